// Read a snapshot module back into instance state and the program to run it
// with. Every structural problem is refused with its own error; a file whose
// digest does not match is refused as corrupt; a stack made by other
// instrumentation is refused as incompatible. Nothing is run before all of
// that has been checked.

import { ModuleFormatError, Reader, UnsupportedFeatureError, Writer } from '../wasm/binary.ts';
import { parseModule, SectionId, type ModuleInfo } from '../wasm/module.ts';
import { Op } from '../wasm/instructions.ts';
import { State } from '../instance/status.ts';
import {
  BUFFER_SECTION,
  DIGEST_SIZE,
  EXPORT_SECTION,
  GATE_STACK_SECTION,
  SNAPSHOT_SECTION,
  STATE_SECTION,
  SnapshotError,
  decodeBuffers,
  decodeEngineState,
  decodeRecord,
  sha256,
  statusFor,
  type EngineState,
} from './format.ts';
import type { GlobalValue, InstanceState, PendingExecution } from './state.ts';
import { entryRoutineOf, type EntryRoutine } from '../instance/stack-frames.ts';
import { ENTRY_ROUTINE_SITES } from '../prepare/call-sites.ts';
import { siteBases } from '../prepare/call-graph.ts';
import { librarySitesOf } from '../prepare/library-sites.ts';
import { PrepareError } from '../prepare/errors.ts';
import { keepsDataSegments, programSegmentCount, writeDataCount, writeProgramSegments } from './segments.ts';

const PAGE = 65536;

export interface Snapshot {
  /**
   * The program part: the snapshot's code with its exports unwrapped and its
   * start section restored, but without state (no data, zeroed mutable
   * globals, zero initial memory), so that all snapshots of a program share
   * one prepared module.
   */
  program: Uint8Array;
  state: InstanceState;
  /** Instrumentation the stack belongs to (when there is a stack). */
  instrumenter?: { version: string; codeHash: Uint8Array };
}

const zeroInit: Record<string, number[]> = {
  i32: [Op.I32Const, 0],
  i64: [Op.I64Const, 0],
  f32: [Op.F32Const, 0, 0, 0, 0],
  f64: [Op.F64Const, 0, 0, 0, 0, 0, 0, 0, 0],
};

interface Located {
  index: number; // section index in the file
  start: number;
  end: number;
}

function locateOnce(info: ModuleInfo, name: string): Located | undefined {
  const found = info.customs.filter((c) => c.name === name);
  if (found.length > 1) throw new SnapshotError(`multiple ${name} sections in wasm module`);
  const c = found[0];
  return c && { index: c.section, start: c.payload.start, end: c.payload.end };
}

function sectionIndex(info: ModuleInfo, id: number): number {
  return info.sections.findIndex((s) => s.id === id);
}

/** The constant of a global initializer written by the snapshot writer. */
function constValue(bytes: Uint8Array, start: number, end: number, type: string): GlobalValue {
  const r = new Reader(bytes, start, end, 'global initializer');
  const op = r.u8();
  let value: GlobalValue;
  if (type === 'i32' && op === Op.I32Const) value = r.s32();
  else if (type === 'i64' && op === Op.I64Const) value = r.s64();
  else if (type === 'f32' && op === Op.F32Const) {
    r.skip(4);
    value = new DataView(bytes.buffer, bytes.byteOffset + r.pos - 4, 4).getFloat32(0, true);
  } else if (type === 'f64' && op === Op.F64Const) {
    r.skip(8);
    value = new DataView(bytes.buffer, bytes.byteOffset + r.pos - 8, 8).getFloat64(0, true);
  } else {
    throw new SnapshotError('snapshot global is not initialized with a constant');
  }
  if (r.u8() !== Op.End || !r.atEnd()) throw new SnapshotError('snapshot global is not initialized with a constant');
  return value;
}

export function isSnapshotModule(info: ModuleInfo): boolean {
  return info.customs.some((c) => c.name === SNAPSHOT_SECTION);
}

/** Parse and check a snapshot. `bytes` must be a snapshot module (see isSnapshotModule). */
export async function readSnapshot(bytes: Uint8Array): Promise<Snapshot> {
  try {
    return await readSnapshotModule(bytes);
  } catch (error) {
    // Bytes the module parser rejects, wherever in the file, are a malformed snapshot.
    if (error instanceof ModuleFormatError || error instanceof UnsupportedFeatureError) {
      throw new SnapshotError(`snapshot is not a valid module: ${error.message}`, 'ERR_SNAPSHOT_MALFORMED');
    }
    throw error;
  }
}

async function readSnapshotModule(bytes: Uint8Array): Promise<Snapshot> {
  const info: ModuleInfo = parseModule(bytes);
  const code = sectionIndex(info, SectionId.Code);
  const data = sectionIndex(info, SectionId.Data);
  const snapshot = locateOnce(info, SNAPSHOT_SECTION);
  const exported = locateOnce(info, EXPORT_SECTION);
  const buffer = locateOnce(info, BUFFER_SECTION);
  const engine = locateOnce(info, STATE_SECTION);
  const gateStack = locateOnce(info, GATE_STACK_SECTION);
  if (!snapshot) throw new SnapshotError(`${SNAPSHOT_SECTION} section missing`);
  // Positions relative to the code and data sections (Gate's rules, docs/snapshot.md).
  const before = (s: Located | undefined, limit: number) => s && limit >= 0 && s.index > limit;
  if (code >= 0 && snapshot.index > code) throw new SnapshotError(`${SNAPSHOT_SECTION} section appears too late in wasm module`);
  if (exported) {
    if (exported.index < snapshot.index) throw new SnapshotError(`${EXPORT_SECTION} section without ${SNAPSHOT_SECTION} section`);
    if (before(exported, code)) throw new SnapshotError(`${EXPORT_SECTION} section appears too late in wasm module`);
    if (sectionIndex(info, SectionId.Export) >= 0) throw new SnapshotError(`${EXPORT_SECTION} section and an export section in one module`);
  }
  for (const [name, s] of [
    [BUFFER_SECTION, buffer],
    [GATE_STACK_SECTION, gateStack],
    [STATE_SECTION, engine],
  ] as const) {
    if (!s) continue;
    if (code < 0 || s.index < code) throw new SnapshotError(`${name} section appears too early in wasm module`);
    if (data >= 0 && s.index > data) throw new SnapshotError(`${name} section appears too late in wasm module`);
  }
  if (buffer && engine && buffer.index > engine.index) throw new SnapshotError(`${BUFFER_SECTION} section appears too late in wasm module`);
  if (buffer && gateStack && buffer.index > gateStack.index) throw new SnapshotError(`${BUFFER_SECTION} section appears too late in wasm module`);
  if (info.importedMemories > 0 || info.memories.length !== 1) throw new SnapshotError('snapshot must define exactly one memory');

  let state: EngineState | undefined;
  if (engine) {
    const decoded = decodeEngineState(bytes, engine.start, engine.end);
    const copy = bytes.slice();
    copy.fill(0, engine.start + decoded.digestAt, engine.start + decoded.digestAt + DIGEST_SIZE);
    const digest = await sha256(copy);
    if (!digest.every((b, i) => b === decoded.digest[i])) {
      throw new SnapshotError('snapshot is corrupt: its digest does not match its contents', 'ERR_SNAPSHOT_CORRUPT');
    }
    state = decoded;
  }
  const record = decodeRecord(bytes, snapshot.start, snapshot.end);
  let pending = state?.pending;
  let start = state?.start;
  const stackBytes = gateStack ? bytes.slice(gateStack.start, gateStack.end) : undefined;
  if (stackBytes && state) {
    // Our snapshot: the stack of a pending execution is Gate's portable stack.
    if (pending) pending = { ...pending, stack: pending.stack.byteLength > 0 ? pending.stack : stackBytes };
  } else if (stackBytes && !record.final) {
    // Gate's snapshot: what runs is in the stack's entry routine frame.
    const gate = gatePending(bytes, info, stackBytes, exported);
    pending = gate.pending;
    start ??= gate.start;
  }
  const status = statusFor(record, pending !== undefined);
  if (status.state === State.SUSPENDED && !pending && status.cause === 'NORMAL') {
    throw new SnapshotError('suspended snapshot without execution state', 'ERR_SNAPSHOT_INCOMPATIBLE');
  }
  if (state?.error !== undefined) status.error = state.error;
  if (state?.limit !== undefined) status.limit = state.limit;

  // Memory: the data segments of the current size.
  const pages = info.memories[0].initial;
  const memory = new Uint8Array(pages * PAGE);
  for (const seg of info.data) {
    if (seg.mode === 'passive') continue; // the program's own (docs/snapshot.md)
    if (!seg.offset) throw new SnapshotError('snapshot data segments must be active or passive');
    const offset = constValue(bytes, seg.offset.start, seg.offset.end, 'i32') as number;
    const length = seg.data.end - seg.data.start;
    if (offset < 0 || offset + length > memory.byteLength) throw new SnapshotError('snapshot data segment outside memory');
    memory.set(bytes.subarray(seg.data.start, seg.data.end), offset);
  }
  const globals = new Map<number, GlobalValue>();
  info.globals.forEach((g, i) => {
    if (g.mutable) globals.set(info.importedGlobals + i, constValue(bytes, g.init.start, g.init.end, g.type));
  });
  const channel = buffer
    ? decodeBuffers(bytes, buffer.start, buffer.end)
    : { services: [], input: new Uint8Array(0), output: new Uint8Array(0) };

  return {
    program: programOf(bytes, info, exported, start, true),
    state: {
      status,
      memory,
      globals,
      channel,
      monotonic: record.monotonic,
      pending,
      start,
      fuelUsed: state?.fuelUsed ?? 0,
      timeUsed: state?.timeUsed ?? 0,
      ...(state?.tables && { tables: state.tables }),
      ...(state?.dropped && { dropped: state.dropped }),
    },
    instrumenter: state && { version: state.instrumenter, codeHash: state.codeHash },
  };
}

/**
 * A pending execution from the entry routine frame of Gate's portable stack:
 * which phase runs and which export (Gate names functions by index).
 */
function gatePending(
  bytes: Uint8Array,
  info: ModuleInfo,
  stack: Uint8Array,
  exported: Located | undefined,
): { pending: PendingExecution; start: number | undefined } {
  let routine: EntryRoutine;
  try {
    routine = entryRoutineOf(stack);
  } catch (error) {
    throw new SnapshotError(`invalid ${GATE_STACK_SECTION} section: ${(error as Error).message}`);
  }
  const program = programOf(bytes, info, exported, undefined, true);
  const part = parseModule(program);
  const nameOf = (f: number | undefined): string | undefined => {
    if (f === undefined) return undefined;
    const e = part.exports.find((x) => x.kind === 'func' && x.index === f);
    if (!e) throw new SnapshotError(`entry function index ${f} is not exported`);
    return e.name;
  };
  if (routine.kind === 'nothing-run') {
    const phase = routine.start !== undefined ? 'start' : 'entry';
    return { pending: { phase, entry: nameOf(routine.entry), stack: new Uint8Array(0) }, start: routine.start };
  }
  if (routine.kind === 'start-running') {
    return { pending: { phase: 'start', entry: nameOf(routine.entry), stack }, start: undefined };
  }
  // The entry function is the function of the outermost frame.
  const f = outermostFunction(program, part, stack);
  return { pending: { phase: 'entry', entry: nameOf(f), stack }, start: undefined };
}

/** The function of the frame just inside Gate's entry routine frame. */
function outermostFunction(program: Uint8Array, part: ModuleInfo, stack: Uint8Array): number {
  const view = new DataView(stack.buffer, stack.byteOffset, stack.byteLength);
  let p = 0;
  let last = -1;
  for (;;) {
    const index = view.getUint32(p, true);
    const offset = view.getUint32(p + 4, true);
    if (index < ENTRY_ROUTINE_SITES) break;
    last = index;
    p += offset;
  }
  if (last < 0) throw new SnapshotError(`${GATE_STACK_SECTION} section has no function frame`);
  const functionImports = part.imports.filter((i) => i.kind === 'func');
  // The program is not validated yet (preparing it will): code that cannot be read is refused as preparing refuses it.
  let bases: Int32Array;
  try {
    bases = siteBases(program, part, (k) => librarySitesOf(functionImports[k].module, functionImports[k].field));
  } catch (error) {
    if (WebAssembly.validate(program as BufferSource)) throw error;
    throw new PrepareError('ERR_MODULE_INVALID', `invalid module: ${(error as Error).message}`);
  }
  let f = 0;
  while (f + 1 < bases.length && bases[f + 1] <= last) f++;
  if (f >= bases.length - 1) throw new SnapshotError(`call site index ${last} is unknown`);
  return f;
}

/** The snapshot's program part (see Snapshot.program). */
/**
 * The program part that every snapshot of this (original, non-snapshot)
 * program has: what readSnapshot returns as `program`. Lets a host that
 * prepared the original reuse that preparation for a first restore. null
 * when the module has no single defined memory (snapshots need one) or is
 * itself a snapshot.
 */
export function programPartOf(bytes: Uint8Array): Uint8Array | null {
  const info = parseModule(bytes);
  if (info.memories.length !== 1 || info.importedMemories !== 0 || isSnapshotModule(info)) return null;
  return programOf(bytes, info, undefined, info.start, false);
}

function programOf(bytes: Uint8Array, info: ModuleInfo, exported: Located | undefined, start: number | undefined, fromSnapshot: boolean): Uint8Array {
  const out = new Writer(bytes.byteLength);
  out.bytes(bytes, 0, 8);
  const copy = (id: number) => {
    for (const s of info.sections) if (s.id === id) out.bytes(bytes, s.start, s.end);
  };
  copy(SectionId.Type);
  copy(SectionId.Import);
  copy(SectionId.Function);
  copy(SectionId.Table);
  const maximum = info.memories[0].maximum;
  out.u8(SectionId.Memory);
  const mm = out.beginSize();
  out.u32(1);
  out.u8(maximum === undefined ? 0 : 1);
  out.u32(0);
  if (maximum !== undefined) out.u32(maximum);
  out.endSize(mm);
  if (info.globals.length > 0) {
    out.u8(SectionId.Global);
    const gm = out.beginSize();
    out.u32(info.globals.length);
    for (const g of info.globals) {
      out.bytes(bytes, g.range.start, g.init.start);
      if (g.mutable) out.bytes(Uint8Array.from([...zeroInit[g.type], Op.End]));
      else out.bytes(bytes, g.init.start, g.init.end);
    }
    out.endSize(gm);
  }
  if (exported) {
    // The wrapped section must be exactly one export section filling the custom section.
    const r = new Reader(bytes, exported.start, exported.end, `${EXPORT_SECTION} section`);
    if (exported.end - exported.start < 2) throw new SnapshotError(`${EXPORT_SECTION} section is too short`);
    if (r.u8() !== SectionId.Export) {
      throw new SnapshotError(`${EXPORT_SECTION} section does not contain a standard export section`);
    }
    const size = r.u32();
    if (r.pos + size !== exported.end) throw new SnapshotError(`${EXPORT_SECTION} section size mismatch`);
    out.bytes(bytes, exported.start, exported.end);
  } else {
    copy(SectionId.Export);
  }
  if (start !== undefined) {
    out.u8(SectionId.Start);
    const sm = out.beginSize();
    out.u32(start);
    out.endSize(sm);
  }
  copy(SectionId.Element);
  const kept = programSegmentCount(info, fromSnapshot);
  if (keepsDataSegments(info)) writeDataCount(out, kept);
  copy(SectionId.Code);
  if (kept > 0) {
    out.u8(SectionId.Data);
    const dm = out.beginSize();
    out.u32(kept);
    writeProgramSegments(out, bytes, info, fromSnapshot);
    out.endSize(dm);
  }
  // Trailing custom sections (names, producers) stay with the program, so a
  // snapshot of a restored instance has them too.
  for (const c of info.customs) {
    if (c.name.startsWith('gate.') || c.name.startsWith('gate-ts.')) continue;
    const s = info.sections[c.section];
    if (info.sections.slice(c.section).some((t) => t.id !== SectionId.Custom)) continue;
    out.bytes(bytes, s.start, s.end);
  }
  return out.finish();
}
