// Write an instance as a snapshot module (docs/snapshot.md): the program's
// code with its memory as data and its globals' current values, plus custom
// sections for the state. Same state in, same bytes out.

import { Reader, Writer, u32Length } from '../wasm/binary.ts';
import { Op } from '../wasm/instructions.ts';
import { parseModule, SectionId, type ModuleInfo } from '../wasm/module.ts';
import type { ValType } from '../wasm/features.ts';
import { State } from '../instance/status.ts';
import {
  BUFFER_SECTION,
  EXPORT_SECTION,
  GATE_STACK_SECTION,
  SNAPSHOT_SECTION,
  STATE_SECTION,
  SnapshotError,
  encodeBuffers,
  encodeEngineState,
  encodeRecord,
  recordFor,
  sha256,
} from './format.ts';
import type { InstanceState } from './state.ts';
import { keepsDataSegments, programSegmentCount, writeDataCount, writeProgramSegments } from './segments.ts';

const PAGE = 65536;

const typeCodes: Partial<Record<ValType, number>> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70, externref: 0x6f };

/**
 * State a snapshot cannot hold yet: imported or several memories, imported
 * tables, and globals whose values JavaScript cannot read or write as
 * numbers. Refused with a clear error.
 */
export function unsupportedState(info: ModuleInfo): string | undefined {
  if (info.importedMemories > 0 || info.memories.length > 1) return 'imported or multiple memories';
  if (info.importedTables > 0) return 'imported tables';
  for (const g of info.globals) {
    if (g.mutable && !['i32', 'i64', 'f32', 'f64'].includes(g.type)) return `a mutable ${g.type} global`;
  }
  return undefined;
}

function customSection(out: Writer, name: string, payload: Uint8Array): number {
  out.u8(SectionId.Custom);
  const m = out.beginSize();
  out.name(name);
  out.bytes(payload);
  out.endSize(m);
  // Offset of the payload (endSize may have moved it).
  return out.len - payload.byteLength;
}

function globalSection(out: Writer, bytes: Uint8Array, info: ModuleInfo, state: InstanceState): void {
  if (info.globals.length === 0) return;
  out.u8(SectionId.Global);
  const m = out.beginSize();
  out.u32(info.globals.length);
  info.globals.forEach((g, i) => {
    const index = info.importedGlobals + i;
    out.u8(typeCodes[g.type]!);
    out.u8(g.mutable ? 1 : 0);
    if (!g.mutable) {
      out.bytes(bytes, g.init.start, g.init.end);
      return;
    }
    const value = state.globals.get(index);
    if (value === undefined) throw new SnapshotError(`no value captured for global ${index}`);
    const scratch = new DataView(new ArrayBuffer(8));
    switch (g.type) {
      case 'i32':
        out.u8(Op.I32Const);
        out.s32(Number(value));
        break;
      case 'i64':
        out.u8(Op.I64Const);
        out.s64(BigInt(value));
        break;
      case 'f32':
        out.u8(Op.F32Const);
        scratch.setFloat32(0, Number(value), true);
        out.bytes(new Uint8Array(scratch.buffer, 0, 4));
        break;
      case 'f64':
        out.u8(Op.F64Const);
        scratch.setFloat64(0, Number(value), true);
        out.bytes(new Uint8Array(scratch.buffer, 0, 8));
        break;
    }
    out.u8(Op.End);
  });
  out.endSize(m);
}

/**
 * Memory as active data segments: each run of non-zero 8-byte words, trimmed
 * to its first and last non-zero byte. Zero pages cost nothing.
 */
function dataSegments(memory: Uint8Array): [number, number][] {
  // Whole words through a Uint32Array: a zero test does not care about byte order.
  const source = memory.byteOffset % 4 === 0 ? memory : memory.slice();
  const w = new Uint32Array(source.buffer, source.byteOffset, source.byteLength >>> 2);
  const words = w.length >>> 1;
  const segments: [number, number][] = [];
  let i = 0;
  while (i < words) {
    if ((w[2 * i] | w[2 * i + 1]) === 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < words && (w[2 * j] | w[2 * j + 1]) !== 0) j++;
    let start = i * 8;
    let end = j * 8;
    while (memory[start] === 0) start++;
    while (memory[end - 1] === 0) end--;
    segments.push([start, end]);
    i = j;
  }
  return segments;
}

function s32Length(v: number): number {
  let n = 1;
  while (v >= 0x40 || v < -0x40) {
    v >>= 7;
    n++;
  }
  return n;
}

/** Size of the data section's payload for these segments after the program's own (`kept` bytes of them). */
function dataPayloadSize(segments: readonly [number, number][], count: number, kept: number): number {
  let size = u32Length(count) + kept;
  for (const [start, end] of segments) size += 3 + s32Length(start) + u32Length(end - start) + (end - start);
  return size;
}

/** Bytes writeProgramSegments writes for an original program or program part. */
function programSegmentBytes(info: ModuleInfo): number {
  if (!keepsDataSegments(info)) return 0;
  let n = 0;
  for (const seg of info.data) n += seg.mode === 'passive' ? seg.range.end - seg.range.start : 2;
  return n;
}

function dataSection(out: Writer, program: Uint8Array, info: ModuleInfo, memory: Uint8Array, segments: readonly [number, number][], size: number): void {
  // The size is known up front, so the (possibly huge) payload is never moved to fit its size prefix.
  out.u8(SectionId.Data);
  out.u32(size);
  const at = out.len;
  out.u32(programSegmentCount(info, false) + segments.length);
  if (keepsDataSegments(info)) writeProgramSegments(out, program, info, false);
  for (const [start, end] of segments) {
    out.u8(0);
    out.u8(Op.I32Const);
    out.s32(start);
    out.u8(Op.End);
    out.u32(end - start);
    out.bytes(memory, start, end);
  }
  if (out.len - at !== size) throw new Error('data section size mismatch');
}

/**
 * The snapshot module of an instance. `program` is the module the instance
 * runs (an original program, or the program part of a snapshot it was
 * restored from); `instrumentation` identifies the code its stack belongs to.
 */
export interface Instrumentation {
  /** PREPARE_VERSION of the rewrite the instance ran under. */
  version: string;
  /** SHA-256 of the program's code section, which the stack belongs to. */
  codeHash: Uint8Array;
}

export async function writeSnapshot(program: Uint8Array, state: InstanceState, instrumentation: Instrumentation): Promise<Uint8Array> {
  const info = parseModule(program);
  const unsupported = unsupportedState(info);
  if (unsupported) throw new SnapshotError(`cannot snapshot a program that uses ${unsupported}`, 'ERR_SNAPSHOT_UNSUPPORTED');
  if (state.memory.byteLength % PAGE !== 0) throw new SnapshotError('memory is not a whole number of pages');

  const copy = (id: number) => {
    for (const s of info.sections) if (s.id === id) out.bytes(program, s.start, s.end);
  };
  const segments = dataSegments(state.memory);
  const programSegments = programSegmentCount(info, false);
  const dataSize = dataPayloadSize(segments, programSegments + segments.length, programSegmentBytes(info));
  // Room for everything, so that the memory is copied once, straight into place.
  const stateSize = (state.pending?.stack.byteLength ?? 0) + state.channel.input.byteLength + state.channel.output.byteLength;
  const serviceSize = state.channel.services.reduce((n, svc) => n + svc.buffer.byteLength, 0);
  const out = new Writer(program.byteLength + dataSize + stateSize + serviceSize + 4096);
  out.bytes(program, 0, 8);
  copy(SectionId.Type);
  copy(SectionId.Import);
  copy(SectionId.Function);
  copy(SectionId.Table);

  out.u8(SectionId.Memory);
  const mm = out.beginSize();
  out.u32(1);
  const maximum = info.memories[0]?.maximum;
  out.u8(maximum === undefined ? 0 : 1);
  out.u32(state.memory.byteLength / PAGE);
  if (maximum !== undefined) out.u32(maximum);
  out.endSize(mm);

  globalSection(out, program, info, state);
  customSection(out, SNAPSHOT_SECTION, encodeRecord(recordFor(state.status, state.monotonic)));

  const exports = info.sections.find((s) => s.id === SectionId.Export);
  const pending = state.status.state === State.SUSPENDED ? state.pending : undefined;
  if (exports && pending) {
    // A program in the middle of running must not be entered elsewhere: its
    // exports are hidden from engines that do not know this section.
    customSection(out, EXPORT_SECTION, program.subarray(exports.start, exports.end));
  } else {
    copy(SectionId.Export);
  }
  copy(SectionId.Element);
  if (keepsDataSegments(info)) writeDataCount(out, programSegments + segments.length);
  copy(SectionId.Code);

  const buffers = encodeBuffers(state.channel);
  if (buffers) customSection(out, BUFFER_SECTION, buffers);
  let kept = pending;
  if (pending) {
    // Gate's own section, in Gate's place: Gate resumes such a stack.
    customSection(out, GATE_STACK_SECTION, pending.stack.byteLength > 0 ? pending.stack : initialStack(info, state, pending));
    kept = { ...pending, stack: new Uint8Array(0) };
  }
  const engine = encodeEngineState({
    instrumenter: instrumentation.version,
    codeHash: instrumentation.codeHash,
    start: info.start ?? state.start,
    pending: kept,
    fuelUsed: state.fuelUsed,
    timeUsed: state.timeUsed,
    error: state.status.error,
    limit: state.status.limit,
    tables: state.tables,
    dropped: state.dropped,
  });
  const stateAt = customSection(out, STATE_SECTION, engine.bytes);

  dataSection(out, program, info, state.memory, segments, dataSize);

  // Custom sections after the program's last standard section (names,
  // producers, debug info) come along; earlier Gate sections do not.
  let lastStandard = -1;
  info.sections.forEach((s, i) => {
    if (s.id !== SectionId.Custom) lastStandard = i;
  });
  for (const c of info.customs) {
    if (c.section <= lastStandard || c.name.startsWith('gate.') || c.name.startsWith('gate-ts.')) continue;
    const s = info.sections[c.section];
    out.bytes(program, s.start, s.end);
  }

  // A tight buffer is handed out as it is; a loose one is copied to size.
  const bytes = out.buf.length - out.len <= 65536 ? out.buf.subarray(0, out.len) : out.finish();
  const digest = await sha256(bytes);
  bytes.set(digest, stateAt + engine.digestAt);
  return bytes;
}

/**
 * Gate's stack of a program that has not started: the entry routine's frame
 * with the start and entry functions (all ones for none).
 */
function initialStack(info: ModuleInfo, state: InstanceState, pending: NonNullable<InstanceState['pending']>): Uint8Array {
  const none = 0xffffffffffffffffn;
  const bytes = new Uint8Array(24);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, 16n << 32n, true);
  // A start function that has run is not run again.
  const start = pending.phase === 'start' ? (info.start ?? state.start) : undefined;
  view.setBigUint64(8, start === undefined ? none : BigInt(start), true);
  const entry = pending.entry;
  const e = entry === undefined ? undefined : info.exports.find((x) => x.kind === 'func' && x.name === entry);
  view.setBigUint64(16, e === undefined ? none : BigInt(e.index), true);
  return bytes;
}

/** Whether a module carries snapshot state (checked cheaply, without a full parse). */
export function hasSnapshotSection(bytes: Uint8Array): boolean {
  try {
    const r = new Reader(bytes, 8, bytes.byteLength);
    while (!r.atEnd()) {
      const id = r.u8();
      const size = r.u32();
      const end = r.pos + size;
      if (id === SectionId.Custom && r.name() === SNAPSHOT_SECTION) return true;
      r.pos = end;
    }
  } catch {
    // Not a well-formed module: not a snapshot either.
  }
  return false;
}
