// Byte formats of the snapshot custom sections (docs/snapshot.md).
//
// gate.snapshot, gate.buffer and gate.stack follow Gate's layout, so that
// snapshots move between Gate and us. What Gate's sections have no place for
// (the phase and entry function by name, fuel and time used, a wait in
// progress, the error text) travels in a section of our own (gate-ts.state),
// which also names the rewrite's version and carries a digest of the whole
// file.

import { Cause, State, causeNumber, type Limit, type Status } from '../instance/status.ts';
import type { ChannelState } from '../instance/channel.ts';
import { Reader, Writer } from '../wasm/binary.ts';
import type { DroppedSegments, PendingExecution } from './state.ts';

export const SNAPSHOT_SECTION = 'gate.snapshot';
export const EXPORT_SECTION = 'gate.export';
export const BUFFER_SECTION = 'gate.buffer';
export const GATE_STACK_SECTION = 'gate.stack';
export const STATE_SECTION = 'gate-ts.state';

/** Version of gate.snapshot we write and accept. */
export const SNAPSHOT_VERSION = 0;
/** Version of gate-ts.state. */
export const STATE_VERSION = 1;
export const DIGEST_SIZE = 32;
const FLAG_FINAL = 1;
const MAX_SERVICES = 256;

/** The snapshot file is not acceptable; the message says why. */
export class SnapshotError extends Error {
  readonly code: string;
  constructor(message: string, code = 'ERR_SNAPSHOT_INVALID') {
    super(message);
    this.name = 'SnapshotError';
    this.code = code;
  }
}

// Gate's trap ids (gate/pb/trap) for the states we record.
const TRAP_EXIT = 0;
const TRAP_SUSPENDED = 2;
const TRAP_KILLED = 30;

export interface SnapshotRecord {
  final: boolean;
  trap: number;
  result: number;
  monotonic: bigint;
}

export function recordFor(status: Status, monotonic: bigint): SnapshotRecord {
  const final = status.state === State.TERMINATED || status.state === State.KILLED;
  let trap = TRAP_EXIT;
  if (status.cause !== Cause.NORMAL) trap = causeNumber[status.cause];
  else if (status.state === State.SUSPENDED) trap = TRAP_SUSPENDED;
  else if (status.state === State.KILLED) trap = TRAP_KILLED;
  return { final, trap, result: status.result, monotonic };
}

/** The status a record describes (hasStack: the program has more to run). */
export function statusFor(record: SnapshotRecord, hasStack: boolean): Status {
  const cause = (Object.keys(causeNumber) as Cause[]).find((c) => causeNumber[c] === record.trap);
  if (record.final) {
    if (record.trap === TRAP_EXIT) return { state: State.TERMINATED, cause: Cause.NORMAL, result: record.result };
    if (record.trap === TRAP_KILLED) return { state: State.KILLED, cause: Cause.NORMAL, result: 0 };
    if (!cause) throw new SnapshotError(`unknown trap id ${record.trap} in ${SNAPSHOT_SECTION} section`);
    return { state: State.KILLED, cause, result: 0 };
  }
  if (record.trap === TRAP_EXIT) {
    return hasStack
      ? { state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 }
      : { state: State.HALTED, cause: Cause.NORMAL, result: record.result };
  }
  if (record.trap === TRAP_SUSPENDED) return { state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 };
  if (
    cause === Cause.CALL_STACK_EXHAUSTED ||
    cause === Cause.ABI_DEFICIENCY ||
    cause === Cause.BREAKPOINT
  ) {
    return { state: State.SUSPENDED, cause, result: 0 };
  }
  throw new SnapshotError(`trap id ${record.trap} is not valid for a snapshot that is not final`);
}

export function encodeRecord(r: SnapshotRecord): Uint8Array {
  const w = new Writer(32);
  w.u8(SNAPSHOT_VERSION);
  w.u8(r.final ? FLAG_FINAL : 0);
  w.u32(r.trap);
  w.u32(r.result >>> 0);
  writeU64(w, r.monotonic);
  w.u32(0); // no breakpoints
  return w.finish();
}

export function decodeRecord(bytes: Uint8Array, start: number, end: number): SnapshotRecord {
  const r = new Reader(bytes, start, end, `${SNAPSHOT_SECTION} section`);
  const version = readU64(r);
  if (version !== BigInt(SNAPSHOT_VERSION)) {
    throw new SnapshotError(`unsupported ${SNAPSHOT_SECTION} version ${version}`, 'ERR_SNAPSHOT_VERSION');
  }
  const flags = readU64(r);
  if (flags & ~BigInt(FLAG_FINAL)) throw new SnapshotError(`unknown ${SNAPSHOT_SECTION} flags 0x${flags.toString(16)}`);
  const trap = r.u32();
  const result = r.u32() | 0;
  const monotonic = readU64(r);
  const breakpoints = r.u32();
  if (breakpoints > 0) throw new SnapshotError('snapshots with breakpoints are not supported');
  return { final: flags === BigInt(FLAG_FINAL), trap, result, monotonic };
}

/** gate.buffer: omitted (undefined) when there is nothing in it. */
export function encodeBuffers(c: ChannelState): Uint8Array | undefined {
  if (c.services.length === 0 && c.input.byteLength === 0 && c.output.byteLength === 0) return undefined;
  const w = new Writer(64 + c.input.byteLength + c.output.byteLength);
  w.u32(c.input.byteLength);
  w.u32(c.output.byteLength);
  w.u32(c.services.length);
  const encoder = new TextEncoder();
  for (const s of c.services) {
    const name = encoder.encode(s.name);
    w.u8(name.byteLength);
    w.bytes(name);
    w.u32(s.buffer.byteLength);
  }
  w.bytes(c.input);
  w.bytes(c.output);
  for (const s of c.services) w.bytes(s.buffer);
  return w.finish();
}

export function decodeBuffers(bytes: Uint8Array, start: number, end: number): ChannelState {
  const r = new Reader(bytes, start, end, `${BUFFER_SECTION} section`);
  const invalid = (): never => {
    throw new SnapshotError('invalid buffer section in wasm module');
  };
  const inputLength = r.u32();
  const outputLength = r.u32();
  const count = r.u32();
  if (count > MAX_SERVICES) throw new SnapshotError(`too many services in ${BUFFER_SECTION} section: ${count}`);
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const headers: { name: string; length: number }[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.u8();
    if (length === 0 || length > 127) throw new SnapshotError('service name length out of bounds');
    if (length > r.remaining()) invalid();
    const name = decoder.decode(bytes.subarray(r.pos, r.pos + length));
    r.pos += length;
    headers.push({ name, length: r.u32() });
  }
  const take = (n: number): Uint8Array => {
    if (n > r.remaining()) invalid();
    const out = bytes.slice(r.pos, r.pos + n);
    r.pos += n;
    return out;
  };
  const input = take(inputLength);
  const output = take(outputLength);
  const services = headers.map((h) => ({ name: h.name, buffer: take(h.length) }));
  return { services, input, output };
}

export interface EngineState {
  /** The instrumentation that made the stack. */
  instrumenter: string;
  /** SHA-256 of the instrumented code section: the stack is only valid with that code. */
  codeHash: Uint8Array;
  /** The program's start function (Gate drops the start section from snapshots). */
  start?: number;
  pending?: PendingExecution;
  fuelUsed: number;
  timeUsed: number;
  error?: string;
  limit?: Limit;
  tables?: Map<number, (number | null)[]>;
  dropped?: DroppedSegments;
}

const STATE_PENDING = 1;
const STATE_WAITING = 2;
const STATE_ERROR = 4;
const STATE_TABLES = 8;
const STATE_DROPPED = 16;
/** The run hibernated in its wait (PendingExecution.wait follows the memo). */
const STATE_HIBERNATED = 32;
const STATE_FLAGS = STATE_PENDING | STATE_WAITING | STATE_ERROR | STATE_TABLES | STATE_DROPPED | STATE_HIBERNATED;
const LIMITS: (Limit | undefined)[] = [undefined, 'fuel', 'time'];

/** gate-ts.state, with a zeroed digest; returns the bytes and the digest's offset in them. */
export function encodeEngineState(s: EngineState): { bytes: Uint8Array; digestAt: number } {
  const p = s.pending;
  const w = new Writer(64 + (p?.stack.byteLength ?? 0));
  w.u8(STATE_VERSION);
  w.name(s.instrumenter);
  const digestAt = w.len;
  w.bytes(new Uint8Array(DIGEST_SIZE));
  if (s.codeHash.byteLength !== DIGEST_SIZE) throw new Error('code hash must be a SHA-256 digest');
  w.bytes(s.codeHash);
  w.u32(s.start === undefined ? 0 : s.start + 1);
  let flags = 0;
  if (p) flags |= STATE_PENDING;
  if (p?.waitMemo) flags |= STATE_WAITING;
  if (p?.waitMemo && p.wait) flags |= STATE_HIBERNATED;
  if (s.error !== undefined) flags |= STATE_ERROR;
  if (s.tables) flags |= STATE_TABLES;
  if (s.dropped && (s.dropped.data.length > 0 || s.dropped.elem.length > 0)) flags |= STATE_DROPPED;
  w.u8(flags);
  if (p) {
    w.u8(p.phase === 'start' ? 0 : 1);
    w.name(p.entry ?? '');
    w.u32(p.stack.byteLength);
    w.bytes(p.stack);
    if (p.waitMemo) {
      w.u32(p.waitMemo.length);
      for (const v of p.waitMemo) w.s64(v);
    }
    if (flags & STATE_HIBERNATED) {
      const wait = p.wait!;
      w.u8((wait.readable ? 1 : 0) | (wait.writable ? 2 : 0));
      // The time left + 1, 0 for none.
      writeU64(w, wait.timeout === null ? 0n : wait.timeout + 1n);
      writeU64(w, wait.realtime);
    }
  }
  writeU64(w, BigInt(Math.round(s.fuelUsed)));
  writeU64(w, BigInt(Math.round(s.timeUsed * 1000)));
  if (s.error !== undefined) {
    w.name(s.error);
    w.u8(s.limit ? LIMITS.indexOf(s.limit) : 0);
  }
  if (flags & STATE_TABLES) {
    // Per table: its index, its size, then each element's function index + 1 (0 for null).
    w.u32(s.tables!.size);
    for (const [index, elements] of s.tables!) {
      w.u32(index);
      w.u32(elements.length);
      for (const f of elements) w.u32(f === null ? 0 : f + 1);
    }
  }
  if (flags & STATE_DROPPED) {
    for (const list of [s.dropped!.data, s.dropped!.elem]) {
      w.u32(list.length);
      for (const i of list) w.u32(i);
    }
  }
  return { bytes: w.finish(), digestAt };
}

export function decodeEngineState(bytes: Uint8Array, start: number, end: number): EngineState & { digest: Uint8Array; digestAt: number } {
  const r = new Reader(bytes, start, end, `${STATE_SECTION} section`);
  const version = r.u8();
  if (version !== STATE_VERSION) {
    throw new SnapshotError(`unsupported ${STATE_SECTION} version ${version}`, 'ERR_SNAPSHOT_VERSION');
  }
  const instrumenter = r.name();
  const digestAt = r.pos - start; // relative to the payload, as encodeEngineState gives it
  r.skip(DIGEST_SIZE);
  const digest = bytes.slice(start + digestAt, start + digestAt + DIGEST_SIZE);
  if (DIGEST_SIZE > r.remaining()) r.eof();
  const codeHash = bytes.slice(r.pos, r.pos + DIGEST_SIZE);
  r.pos += DIGEST_SIZE;
  const startPlusOne = r.u32();
  const flags = r.u8();
  if (flags & ~STATE_FLAGS) throw new SnapshotError(`unknown ${STATE_SECTION} flags`);
  let pending: PendingExecution | undefined;
  if (flags & STATE_PENDING) {
    const phase = r.u8();
    if (phase > 1) throw new SnapshotError(`invalid phase ${phase} in ${STATE_SECTION} section`);
    const entry = r.name();
    const length = r.u32();
    if (length > r.remaining()) r.eof();
    const stack = bytes.slice(r.pos, r.pos + length);
    r.pos += length;
    pending = { phase: phase === 0 ? 'start' : 'entry', stack };
    if (entry) pending.entry = entry;
    if (flags & STATE_WAITING) {
      const n = r.count(1);
      const memo: bigint[] = [];
      for (let i = 0; i < n; i++) memo.push(r.s64());
      pending.waitMemo = memo;
    }
    if (flags & STATE_HIBERNATED) {
      if (!(flags & STATE_WAITING)) throw new SnapshotError(`hibernated run without a wait in ${STATE_SECTION} section`);
      const on = r.u8();
      if (on & ~3) throw new SnapshotError(`invalid wait in ${STATE_SECTION} section`);
      const timeout = readU64(r);
      pending.wait = { readable: (on & 1) !== 0, writable: (on & 2) !== 0, timeout: timeout === 0n ? null : timeout - 1n, realtime: readU64(r) };
    }
  }
  const fuelUsed = Number(readU64(r));
  const timeUsed = Number(readU64(r)) / 1000;
  const state: EngineState & { digest: Uint8Array; digestAt: number } = {
    instrumenter,
    codeHash,
    pending,
    fuelUsed,
    timeUsed,
    digest,
    digestAt,
  };
  if (startPlusOne > 0) state.start = startPlusOne - 1;
  if (flags & STATE_ERROR) {
    state.error = r.name();
    const limit = r.u8();
    if (limit >= LIMITS.length) throw new SnapshotError(`invalid limit ${limit} in ${STATE_SECTION} section`);
    state.limit = LIMITS[limit];
  }
  if (flags & STATE_TABLES) {
    const tables = new Map<number, (number | null)[]>();
    const n = r.count(2);
    for (let t = 0; t < n; t++) {
      const index = r.u32();
      const size = r.count(1);
      const elements: (number | null)[] = [];
      for (let i = 0; i < size; i++) {
        const v = r.u32();
        elements.push(v === 0 ? null : v - 1);
      }
      tables.set(index, elements);
    }
    state.tables = tables;
  }
  if (flags & STATE_DROPPED) {
    const list = (): number[] => {
      const n = r.count(1);
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(r.u32());
      return out;
    };
    state.dropped = { data: list(), elem: list() };
  }
  if (!r.atEnd()) throw new SnapshotError(`trailing bytes in ${STATE_SECTION} section`);
  return state;
}

export function writeU64(w: Writer, v: bigint): void {
  v = BigInt.asUintN(64, v);
  while (v >= 0x80n) {
    w.u8(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  w.u8(Number(v));
}

export function readU64(r: Reader): bigint {
  let result = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    const b = r.u8();
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (result >> 64n) throw new SnapshotError('integer too large in snapshot section');
      return result;
    }
  }
  throw new SnapshotError('integer too long in snapshot section');
}

export type Sha256 = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

let sha256Impl: Sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));

/**
 * Use another SHA-256 implementation for snapshot digests. WebCrypto works
 * everywhere but hashes on a thread pool (a thread hop per digest, slow when
 * the machine is busy); a host with a faster synchronous one (Node's
 * node:crypto hashes about twice as fast) sets it here. The result must be
 * the same SHA-256.
 */
export function setSha256(impl: Sha256): void {
  sha256Impl = impl;
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return sha256Impl(bytes);
}
