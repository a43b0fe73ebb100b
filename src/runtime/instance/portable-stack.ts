// How an instance's wasm stack is taken down and put back (docs/engine.md):
// it comes down as an exception whose handlers write each frame into the
// engine's stack module, and goes back up by calling the entry export again
// with the fuel global set to -1, which sends every function on the way into
// its rewind dispatch. The instance decides when; this does it.

import { FUEL_GRANT } from './fuel-meter.ts';
import type { StackModuleExports } from './stack-module.ts';

/** The instance's side of a tick. */
export interface TickHost {
  /** Whether a slice is running (a tick from a call into the instance outside a run just goes on). */
  readonly executing: boolean;
  /**
   * Fuel ran out: account for it, enforce the limits (throwing ends the run)
   * and decide: go on (a new grant is set), or stop the slice here.
   */
  onTick(): number | 'unwind';
  /** The stack is back where it stopped: grant fuel for the slice. */
  onRewound(): number;
}

/**
 * An argument of the entry function saved with its stack, as bits: i32 a
 * number, i64 a bigint, f32 its bits as a (signed) number, f64 its bits as
 * a bigint, v128 [low, high] bigint halves, references as they are.
 */
export interface SavedArgument {
  type: string;
  value: unknown;
}

/** A stack taken down: the stack module's bytes and the references it held. */
export interface PortableSaved {
  bytes: Uint8Array;
  funcs: unknown[];
  externs: unknown[];
}

/** Function index of the entry routine's frame (the last frame of every stack). */
export const BOTTOM_FUNCTION = 0xffffffff;
const HEADER = 16;

/** The saved stack does not belong to this program (or was corrupted). */
export class StackMismatch extends Error {
  readonly code = 'ERR_STACK_MISMATCH';
  constructor(message: string) {
    super(`saved stack does not match the program: ${message}`);
    this.name = 'StackMismatch';
  }
}

type Innermost = { kind: 'tick'; key: number } | { kind: 'import'; index: number };

/** The stack module's save and load functions, by value type (named once: every instantiation imports them). */
const SAVE_LOAD = ['i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref'].flatMap((t) => [`save_${t}`, `load_${t}`]);

export class PortableStack {
  private readonly sm: StackModuleExports;
  private readonly tag: WebAssembly.Tag;
  private readonly importedFunctions: number;
  private readonly slots: Map<number, number>;
  private host: TickHost | undefined;
  private fuel: WebAssembly.Global | undefined;
  private mode: 'normal' | 'rewinding' | 'unwinding' = 'normal';
  private innermost: Innermost | undefined;
  /** Rewinding: the function of each frame, outermost first. */
  private frameFunctions: number[] = [];
  /** The wrapped import being called. */
  private current: { index: number; params: readonly string[]; args: unknown[] } | undefined;

  constructor(sm: StackModuleExports, importedFunctions: number, rewindTable: readonly number[]) {
    this.sm = sm;
    this.tag = new WebAssembly.Tag({ parameters: [] });
    this.importedFunctions = importedFunctions;
    this.slots = new Map(rewindTable.map((f, slot) => [f, slot]));
  }

  get rewinding(): boolean {
    return this.mode === 'rewinding';
  }

  /** The imports a prepared program needs from the engine module (its memory excepted). */
  imports(host: TickHost): Record<string, WebAssembly.ImportValue> {
    this.host = host;
    const sm = this.sm;
    const imports: Record<string, WebAssembly.ImportValue> = {
      tick: (key: number) => this.tick(key),
      frame: sm.frame,
      mark: sm.mark,
      begin: sm.begin,
      callee: () => this.callee(),
      unwind: this.tag as unknown as WebAssembly.ImportValue,
    };
    for (const name of SAVE_LOAD) imports[name] = sm[name] as WebAssembly.ImportValue;
    return imports;
  }

  /** The instance's exports, once instantiated. */
  bind(exports: WebAssembly.Exports): void {
    this.fuel = exports['gate_engine.fuel'] as WebAssembly.Global;
  }

  /** The program's tick: 1 to go on (the fuel is set), 0 to rewind the frame that called it. */
  private tick(key: number): number {
    const host = this.host!;
    if (!host.executing) {
      this.fuel!.value = FUEL_GRANT;
      return 1;
    }
    if (this.mode === 'rewinding') {
      if ((this.sm.fi.value as number) < (this.sm.frames.value as number)) {
        // A function entered on the way back: it reads its frame next.
        this.fuel!.value = -1;
        return 0;
      }
      const inner = this.innermost;
      if (inner?.kind === 'tick' && inner.key === key) {
        this.mode = 'normal';
        host.onRewound();
        return 1;
      }
      throw new StackMismatch(`rewind reached site ${key}, not the one saved`);
    }
    const decision = host.onTick();
    if (decision !== 'unwind') return 1;
    this.startUnwind();
    this.sm.mark(); // the header the function at this site names in its handler
    throw new WebAssembly.Exception(this.tag, []);
  }

  private startUnwind(): void {
    const sm = this.sm;
    sm.sp.value = 0;
    sm.ph.value = -1;
    sm.nf.value = 0;
    sm.ne.value = 0;
    this.mode = 'unwinding';
  }

  /**
   * Wrap an import that may take the stack down (a blocking ABI function):
   * `index` in the function index space, `params` its parameter types. It is
   * called again when the stack goes back up.
   */
  wrap(index: number, params: readonly string[], fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
    return (...args: unknown[]) => {
      if (this.mode === 'rewinding') {
        const inner = this.innermost;
        const done = (this.sm.fi.value as number) === (this.sm.frames.value as number);
        if (!done || inner?.kind !== 'import' || inner.index !== index) {
          throw new StackMismatch(`rewind reached import ${index}, not the one saved`);
        }
        this.mode = 'normal';
        this.host!.onRewound();
      }
      this.current = { index, params, args };
      try {
        return fn(...args);
      } finally {
        this.current = undefined;
      }
    };
  }

  /** Take the stack down from inside the wrapped import being called. */
  unwindFromImport(): void {
    const c = this.current;
    if (!c) throw new Error('unwind outside an import call');
    const sm = this.sm;
    this.startUnwind();
    // The import's own frame (Gate's library body, at its entry), then its
    // arguments in the caller's frame: a resume calls the import again.
    sm.mark();
    sm.frame(0, c.index);
    sm.mark();
    for (let k = c.params.length - 1; k >= 0; k--) {
      const save = sm[`save_${c.params[k]}`] as (v: unknown) => void;
      save(c.params[k] === 'i64' ? BigInt.asIntN(64, BigInt(c.args[k] as bigint)) : c.args[k]);
    }
    throw new WebAssembly.Exception(this.tag, []);
  }

  /** The export threw: the saved stack if the stack was taken down, else undefined (a real error). */
  unwound(thrown: WebAssembly.Exception): PortableSaved | undefined {
    if (!thrown.is(this.tag)) return undefined;
    const sm = this.sm;
    const sp = sm.sp.value as number;
    const ph = sm.ph.value as number;
    const view = new DataView(sm.memory.buffer);
    // The open header belongs to the entry routine's frame.
    view.setUint32(ph, 0, true);
    view.setUint32(ph + 4, sp - ph, true);
    view.setUint32(ph + 8, BOTTOM_FUNCTION, true);
    const saved: PortableSaved = {
      bytes: new Uint8Array(sm.memory.buffer, 0, sp).slice(),
      funcs: readTable(sm.funcs, sm.nf.value as number),
      externs: readTable(sm.externs, sm.ne.value as number),
    };
    this.mode = 'normal';
    return saved;
  }

  /**
   * Put a stack back: call before calling the export it belongs to (whose
   * parameter types are given); returns that call's saved arguments.
   */
  rewind(s: PortableSaved, paramTypes: readonly string[] = []): readonly SavedArgument[] {
    const sm = this.sm;
    const frames = frameOffsets(s.bytes);
    const listAt = (s.bytes.byteLength + 7) & ~7;
    const need = listAt + 4 * frames.length;
    const have = sm.memory.buffer.byteLength;
    if (need > have) sm.memory.grow(Math.ceil((need - have) / 65536));
    const mem = new Uint8Array(sm.memory.buffer);
    mem.set(s.bytes, 0);
    writeTable(sm.funcs, s.funcs);
    writeTable(sm.externs, s.externs);
    const view = new DataView(sm.memory.buffer);
    const bottom = frames[frames.length - 1];
    let inner = 0;
    const first = frames[0];
    const firstFunction = view.getUint32(first + 8, true);
    if (firstFunction < this.importedFunctions) {
      this.innermost = { kind: 'import', index: firstFunction };
      inner = 1;
    } else {
      this.innermost = { kind: 'tick', key: view.getUint32(first, true) };
    }
    // Function frames, outermost first.
    const functionFrames = frames.slice(inner, frames.length - 1).reverse();
    this.frameFunctions = functionFrames.map((p) => view.getUint32(p + 8, true));
    functionFrames.forEach((p, k) => view.setUint32(listAt + 4 * k, p, true));
    sm.list.value = listAt;
    sm.frames.value = functionFrames.length;
    sm.fi.value = 0;
    this.mode = 'rewinding';
    // The entry function's arguments, saved after the entry routine's header (last first).
    const bottomEnd = bottom + view.getUint32(bottom + 4, true);
    const args: SavedArgument[] = [];
    let p = bottomEnd;
    for (const t of paramTypes) {
      p -= t === 'v128' ? 16 : 8;
      if (p < bottom + HEADER) throw new StackMismatch('entry function arguments missing');
      args.push({ type: t, value: readBits(view, p, t, s) });
    }
    return args;
  }

  /** The call ended in a trap: back to normal, so that the instance's exports work. */
  reset(): void {
    this.mode = 'normal';
    this.current = undefined;
  }

  /** Whether an error means the stack was too deep to save. */
  overflowed(error: unknown): boolean {
    return this.mode === 'unwinding' && error instanceof WebAssembly.RuntimeError;
  }

  /** Rewinding into a call through a table: the rewind-table slot of the function the next frame belongs to. */
  private callee(): number {
    const fi = this.sm.fi.value as number;
    const inner = this.innermost;
    const f = fi < this.frameFunctions.length ? this.frameFunctions[fi] : inner?.kind === 'import' ? inner.index : -1;
    const slot = this.slots.get(f);
    if (slot === undefined) throw new StackMismatch(`function ${f} cannot be called through a table`);
    return slot;
  }
}

/** Offsets of the frames of a saved stack, innermost first (the entry routine's last). */
export function frameOffsets(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  let p = 0;
  for (;;) {
    if (p + HEADER > bytes.byteLength) throw new StackMismatch('truncated frame');
    out.push(p);
    const size = view.getUint32(p + 4, true);
    const fn = view.getUint32(p + 8, true);
    if (size < HEADER || (size & 7) !== 0 || p + size > bytes.byteLength) throw new StackMismatch(`invalid frame size ${size}`);
    p += size;
    if (fn === BOTTOM_FUNCTION) {
      if (p !== bytes.byteLength) throw new StackMismatch('data after the entry routine frame');
      return out;
    }
  }
}

function readBits(view: DataView, p: number, t: string, s: PortableSaved): unknown {
  switch (t) {
    case 'i32':
    case 'f32':
      return view.getInt32(p, true);
    case 'i64':
    case 'f64':
      return view.getBigInt64(p, true);
    case 'v128':
      return [view.getBigInt64(p, true), view.getBigInt64(p + 8, true)];
    case 'funcref':
      return s.funcs[view.getUint32(p, true)];
    case 'externref':
      return s.externs[view.getUint32(p, true)];
    default:
      throw new StackMismatch(`an entry function argument of type ${t} cannot be saved`);
  }
}

/** A saved argument as JavaScript passes it (floats from their bits; v128 cannot be passed). */
export function argumentValue(a: SavedArgument): unknown {
  const scratch = new DataView(new ArrayBuffer(8));
  switch (a.type) {
    case 'f32':
      scratch.setInt32(0, a.value as number, true);
      return scratch.getFloat32(0, true);
    case 'f64':
      scratch.setBigInt64(0, a.value as bigint, true);
      return scratch.getFloat64(0, true);
    case 'v128':
      throw new StackMismatch('a v128 argument cannot be passed from JavaScript');
    default:
      return a.value;
  }
}

function readTable(table: WebAssembly.Table, n: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(table.get(i));
  return out;
}

function writeTable(table: WebAssembly.Table, values: readonly unknown[]): void {
  if (values.length === 0) return;
  if (table.length < values.length) table.grow(values.length - table.length);
  values.forEach((v, i) => table.set(i, v as never));
}
