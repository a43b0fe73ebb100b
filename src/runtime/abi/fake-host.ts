// A scriptable AbiHost for the ABI tests: plain memory, settable clocks, a
// random pool, byte queues for the packet stream and a record of every
// wait, deficiency, exit and trap. It follows host.ts's contracts, including
// wait()'s unwind-and-re-enter protocol.

import type { Cause } from '../instance/status.ts';
import { Exit, Trap } from '../instance/errors.ts';
import type { AbiHost, WaitOutcome, WaitRequest } from './host.ts';

export interface FakeHostOptions {
  /** Memory size in bytes (0 = a module without memory). Default 65536. */
  memorySize?: number;
  timeResolution?: bigint;
  debugEnabled?: boolean;
  /** Random pool for this run. Default 16 distinct non-zero bytes. */
  pool?: number[];
}

export class FakeHost implements AbiHost {
  memory: Uint8Array;
  timeResolution: bigint;
  debugEnabled: boolean;

  realtimeNs = 1_700_000_000_123_456_789n;
  monotonicNs = 1_000_000_000n;
  pool: number[];

  /** Debug log bytes. */
  log: number[] = [];
  /** Host→program bytes waiting to be read. */
  input: number[] = [];
  /** Program→host bytes accepted so far. */
  output: number[] = [];
  /** How many more bytes the program→host stream takes. */
  outputSpace = 65536;
  resumed = true;

  /** Every wait request, in order (including re-entries). */
  waits: WaitRequest[] = [];
  /** Set while "unwound": the request a re-entry will complete. */
  pending: WaitRequest | null = null;
  /** Make the pending wait end as an interruption (nothing ready). */
  interrupt = false;
  deficiencies = 0;
  traps: Cause[] = [];
  exits: number[] = [];

  constructor(options: FakeHostOptions = {}) {
    this.memory = new Uint8Array(options.memorySize ?? 65536);
    this.timeResolution = options.timeResolution ?? 1024n;
    this.debugEnabled = options.debugEnabled ?? true;
    this.pool = options.pool ?? Array.from({ length: 16 }, (_, i) => 0xa0 + i);
  }

  bytes(): Uint8Array {
    return this.memory;
  }
  view(): DataView {
    return new DataView(this.memory.buffer, this.memory.byteOffset, this.memory.byteLength);
  }
  realtime(): bigint {
    return this.realtimeNs;
  }
  monotonic(): bigint {
    return this.monotonicNs;
  }
  random(n: number): Uint8Array {
    return Uint8Array.from(this.pool.splice(0, n));
  }
  debug(data: Uint8Array): void {
    this.log.push(...data);
  }
  readable(): boolean {
    return this.input.length > 0;
  }
  writable(): boolean {
    return this.outputSpace > 0;
  }
  read(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.input.length);
    dst.set(this.input.splice(0, n));
    return n;
  }
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.outputSpace);
    this.output.push(...src.subarray(0, n));
    this.outputSpace -= n;
    return n;
  }
  takeResumedFlag(): boolean {
    const r = this.resumed;
    this.resumed = false;
    return r;
  }

  wait(request: WaitRequest): WaitOutcome | null {
    this.waits.push(request);
    const saved = this.pending;
    if (saved !== null) {
      // Re-entry after the unwind: the outcome of the original wait.
      this.pending = null;
      if (this.interrupt) {
        this.interrupt = false;
        return { readable: false, writable: false, memo: saved.memo ?? [] };
      }
      return this.outcome(saved);
    }
    const now = this.outcome(request);
    if (now.readable || now.writable || request.timeout === 0n) return now;
    this.pending = request;
    return null;
  }

  private outcome(request: WaitRequest): WaitOutcome {
    return {
      readable: request.readable && this.readable(),
      writable: request.writable && this.writable(),
      memo: request.memo ?? [],
    };
  }

  deficiency(): void {
    this.deficiencies++;
  }
  exit(status: number): never {
    this.exits.push(status);
    throw new Exit(status);
  }
  trap(cause: Cause): never {
    this.traps.push(cause);
    throw new Trap(cause);
  }

  // Test conveniences for reading and writing guest memory.

  get dv(): DataView {
    return this.view();
  }
  u8(addr: number): number {
    return this.memory[addr];
  }
  u16(addr: number): number {
    return this.dv.getUint16(addr, true);
  }
  u32(addr: number): number {
    return this.dv.getUint32(addr, true);
  }
  u64(addr: number): bigint {
    return this.dv.getBigUint64(addr, true);
  }
  setU8(addr: number, v: number): void {
    this.memory[addr] = v;
  }
  setU16(addr: number, v: number): void {
    this.dv.setUint16(addr, v, true);
  }
  setU32(addr: number, v: number): void {
    this.dv.setUint32(addr, v >>> 0, true);
  }
  setU64(addr: number, v: bigint): void {
    this.dv.setBigUint64(addr, BigInt.asUintN(64, v), true);
  }
  put(addr: number, data: string | ArrayLike<number>): void {
    this.memory.set(typeof data === 'string' ? new TextEncoder().encode(data) : data, addr);
  }
  text(addr: number, len: number): string {
    return new TextDecoder().decode(this.memory.subarray(addr, addr + len));
  }
  /** Write {base, len} records at addr. */
  iovecs(addr: number, vecs: ReadonlyArray<readonly [number, number]>): void {
    vecs.forEach(([base, len], i) => {
      this.setU32(addr + 8 * i, base);
      this.setU32(addr + 8 * i + 4, len);
    });
  }
  logText(): string {
    return new TextDecoder().decode(Uint8Array.from(this.log));
  }
}
