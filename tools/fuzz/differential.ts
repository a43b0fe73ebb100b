// Differential execution of one module: plain on V8 (the reference) and
// through our engine (preparation, fuel, Asyncify), with suspensions at
// chosen fuel points, each continued either in place or in a fresh instance
// restored from a snapshot file. Both runs call every exported function in
// order with zero arguments, as Binaryen's own fuzz harness does, and record
// what the module logs, what each call returns or how it traps, and at the
// end the memory and the exported globals.

import { ModuleCache } from '../../src/host/module-cache.ts';
import { nodeEngine } from '../../src/host/engine.ts';
import type { Engine } from '../../src/runtime/instance/engine.ts';
import { Instance, type CompiledModule } from '../../src/runtime/instance/instance.ts';
import { State, type Status } from '../../src/runtime/instance/status.ts';
import { trapCause } from '../../src/runtime/instance/trap.ts';
import { instrumentationOf } from '../../src/runtime/snapshot/instrumentation.ts';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import type { InstanceState } from '../../src/runtime/snapshot/state.ts';
import { unsupportedState, writeSnapshot } from '../../src/runtime/snapshot/write.ts';
import { Writer } from '../../src/runtime/wasm/binary.ts';
import type { ValType } from '../../src/runtime/wasm/features.ts';
import { parseModule, SectionId } from '../../src/runtime/wasm/module.ts';
import { Random } from './random.ts';

/** Everything observable about a run, in order. */
export interface Outcome {
  events: string[];
  memory: Uint8Array | undefined;
  /** The run stopped comparing early: a call exhausted the stack (its depth differs by design). */
  exhausted: boolean;
}

/** How the engine run is interrupted. */
export interface Plan {
  /** Seed of the suspension points and of the choice between resuming in place and restoring. */
  seed: number;
  /** Average fuel between suspensions (0: none). */
  gap: number;
  /** Probability that a suspension is continued from a snapshot in a fresh instance. */
  restore: number;
  /** Most suspensions in one module run. */
  maxSuspensions: number;
}

export interface EngineStats {
  suspensions: number;
  restores: number;
  /** Modules whose state a snapshot cannot hold, by reason: suspended in place only. */
  unsnapshottable: Map<string, number>;
}

export const MEMORY_EXPORT = 'fuzz:memory';
const GLOBAL_EXPORT = 'fuzz:global:';
/** The engine may not take much longer than plain V8 before it counts as hung. */
const TIME_LIMIT_MS = 30_000;
const MAX_PAGES = 65536;

const KIND_FUNC = 0;
const KIND_GLOBAL = 3;
const KIND_MEMORY = 2;

/**
 * The module with its memory and every mutable global exported (under names
 * that cannot clash), so that both runs' final state can be read.
 */
export function exposeState(bytes: Uint8Array): Uint8Array {
  const info = parseModule(bytes);
  const extra: [string, number, number][] = [];
  if (info.memories.length + info.importedMemories > 0) extra.push([MEMORY_EXPORT, KIND_MEMORY, 0]);
  info.globals.forEach((g, i) => {
    if (g.mutable && g.type !== 'v128') extra.push([GLOBAL_EXPORT + (info.importedGlobals + i), KIND_GLOBAL, info.importedGlobals + i]);
  });
  if (extra.length === 0) return bytes;
  const out = new Writer(bytes.length + 64 * extra.length);
  const writeExports = (): void => {
    out.u8(SectionId.Export);
    const size = out.beginSize();
    out.u32(info.exports.length + extra.length);
    for (const e of info.exports) {
      out.name(e.name);
      out.u8(e.kind === 'func' ? KIND_FUNC : e.kind === 'table' ? 1 : e.kind === 'memory' ? KIND_MEMORY : KIND_GLOBAL);
      out.u32(e.index);
    }
    for (const [name, kind, index] of extra) {
      out.name(name);
      out.u8(kind);
      out.u32(index);
    }
    out.endSize(size);
  };
  out.bytes(bytes, 0, 8);
  let placed = false;
  for (const s of info.sections) {
    // The export section stays where it was, or goes before the first section that follows it.
    const after = s.id === SectionId.Export || (s.id !== SectionId.Custom && s.id !== SectionId.Tag && s.id > SectionId.Export);
    if (!placed && after) {
      writeExports();
      placed = true;
    }
    if (s.id === SectionId.Export) continue;
    out.bytes(bytes, s.start, s.end);
  }
  if (!placed) writeExports();
  return out.finish();
}

function formatValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (Object.is(v, -0)) return '-0';
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(formatValue).join(',')}]`;
  if (v === undefined) return 'void';
  return typeof v;
}

/** Argument of the right type and zero value. */
function zero(t: ValType): unknown {
  return t === 'i64' ? 0n : t === 'funcref' || t === 'externref' ? null : 0;
}

/**
 * A helper module exporting log-v128, since JavaScript cannot receive a v128:
 * it splits the value into four i32 lanes for the harness's logger.
 */
const V128_LOGGER = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x0c, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x01, 0x7b, 0x00,
  0x02, 0x09, 0x01, 0x01, 0x68, 0x03, 0x6c, 0x6f, 0x67, 0x00, 0x00,
  0x03, 0x02, 0x01, 0x01,
  0x07, 0x0c, 0x01, 0x08, 0x6c, 0x6f, 0x67, 0x2d, 0x76, 0x31, 0x32, 0x38, 0x00, 0x01,
  0x0a, 0x1a, 0x01, 0x18, 0x00,
  0x20, 0x00, 0xfd, 0x1b, 0x00, 0x20, 0x00, 0xfd, 0x1b, 0x01, 0x20, 0x00, 0xfd, 0x1b, 0x02, 0x20, 0x00, 0xfd, 0x1b, 0x03,
  0x10, 0x00, 0x0b,
]);
let v128Logger: WebAssembly.Module | undefined;

/**
 * The imports Binaryen's generated modules ask for, logging into `events`.
 * call-export and call-export-catch only log: an import may not re-enter the
 * instance that called it (an Asyncify limit), and both runs use these same
 * imports, so the comparison stays exact.
 */
export function harnessImports(events: string[]): WebAssembly.Imports {
  v128Logger ??= new WebAssembly.Module(V128_LOGGER as Uint8Array<ArrayBuffer>);
  const log =
    (name: string) =>
    (...args: unknown[]): void => {
      events.push(`${name} ${args.map(formatValue).join(' ')}`);
    };
  const logV128 = new WebAssembly.Instance(v128Logger, { h: { log: log('log-v128') } }).exports['log-v128'];
  return {
    'fuzzing-support': {
      'log-i32': log('log-i32'),
      'log-i64': log('log-i64'),
      'log-f32': log('log-f32'),
      'log-f64': log('log-f64'),
      'log-v128': logV128,
      'call-export': log('call-export'),
      'call-export-catch': (...args: unknown[]) => {
        log('call-export-catch')(...args);
        return 0;
      },
      sleep: (ms: unknown, id: unknown) => {
        log('sleep')(ms, id);
        return id;
      },
    },
  };
}

/** The exported functions both runs call, in export order, with their zero arguments; null for uncallable ones. */
export function entryCalls(bytes: Uint8Array): { name: string; args: unknown[] | null }[] {
  const info = parseModule(bytes);
  return info.exports
    .filter((e) => e.kind === 'func')
    .map((e) => {
      const type = info.types[info.functionType(e.index)];
      // JavaScript cannot pass or receive a v128.
      const callable = !type.params.includes('v128') && !type.results.includes('v128');
      return { name: e.name, args: callable ? type.params.map(zero) : null };
    });
}

function errorEvent(error: unknown): { event: string; exhausted: boolean } {
  const cause = trapCause(error);
  if (cause === 'CALL_STACK_EXHAUSTED') return { event: 'exhausted', exhausted: true };
  if (cause) return { event: `trap ${cause}`, exhausted: false };
  return { event: `error ${(error as Error)?.name}: ${(error as Error)?.message}`, exhausted: false };
}

function readGlobals(exports: WebAssembly.Exports, events: string[]): void {
  for (const [name, value] of Object.entries(exports)) {
    if (!(value instanceof WebAssembly.Global)) continue;
    try {
      if (!name.startsWith('gate_engine.')) events.push(`global ${name} ${formatValue(value.value)}`);
    } catch {
      events.push(`global ${name} v128`);
    }
  }
}

/** The reference: the module straight on V8. */
export function runPlain(bytes: Uint8Array): Outcome {
  const events: string[] = [];
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), harnessImports(events));
  } catch (error) {
    const e = errorEvent(error);
    events.push(`instantiate: ${e.event}`);
    return { events, memory: undefined, exhausted: e.exhausted };
  }
  for (const call of entryCalls(bytes)) {
    if (!call.args) continue;
    try {
      const result = (instance.exports[call.name] as (...a: unknown[]) => unknown)(...call.args);
      events.push(`${call.name} returned ${formatValue(result)}`);
    } catch (error) {
      const e = errorEvent(error);
      events.push(`${call.name} ${e.event}`);
      if (e.exhausted) return { events, memory: undefined, exhausted: true };
    }
  }
  readGlobals(instance.exports, events);
  const memory = instance.exports[MEMORY_EXPORT];
  return { events, memory: memory instanceof WebAssembly.Memory ? new Uint8Array(memory.buffer).slice() : undefined, exhausted: false };
}

/** Prepared modules, shared by all runs of this process. */
const cache = new ModuleCache(null);

export function compile(bytes: Uint8Array): Promise<CompiledModule> {
  return cache.get(bytes, { abi: false, maxMemoryPages: MAX_PAGES });
}

const context = { instance: 'fuzz', scope: [] };
const noServices = { lookup: () => undefined };

function newInstance(engine: Engine, compiled: CompiledModule, events: string[], restore?: InstanceState, entry?: string): Instance {
  return new Instance({
    function: entry,
    engine,
    compiled,
    services: () => noServices,
    context,
    imports: harnessImports(events),
    timeLimit: TIME_LIMIT_MS,
    restore,
  });
}

/** Continue a suspended instance in a fresh one, through a snapshot file, as another host would. */
async function throughSnapshot(
  engine: Engine,
  instance: Instance,
  compiled: CompiledModule,
  events: string[],
): Promise<{ instance: Instance; compiled: CompiledModule }> {
  const file = await writeSnapshot(compiled.program, instance.capture(), await instrumentationOf(compiled.prepared, compiled.program));
  const snapshot = await readSnapshot(file);
  const next = await compile(snapshot.program);
  if (snapshot.instrumenter) {
    const mine = await instrumentationOf(next.prepared, next.program);
    if (!mine.codeHash.every((b, i) => b === snapshot.instrumenter!.codeHash[i])) {
      throw new Error('restored program is instrumented differently from the snapshot');
    }
  }
  return { instance: newInstance(engine, next, events, snapshot.state), compiled: next };
}

/** Our engine, interrupted as the plan says. */
export async function runEngine(bytes: Uint8Array, plan: Plan, engine: Engine, stats: EngineStats): Promise<Outcome> {
  const events: string[] = [];
  let compiled: CompiledModule;
  try {
    compiled = await compile(bytes);
  } catch (error) {
    events.push(`prepare: ${(error as Error).message}`);
    return { events, memory: undefined, exhausted: false };
  }
  const random = new Random(plan.seed);
  const unsupported = unsupportedState(parseModule(bytes));
  if (unsupported && plan.restore > 0) stats.unsnapshottable.set(unsupported, (stats.unsnapshottable.get(unsupported) ?? 0) + 1);
  const restore = unsupported ? 0 : plan.restore;
  let suspensions = 0;
  const nextPoint = (used: number): number =>
    plan.gap > 0 && suspensions < plan.maxSuspensions ? used + random.logInt(1, plan.gap * 2) : Infinity;

  const calls: { name: string | undefined; args: unknown[] | null }[] = entryCalls(bytes).filter((c) => c.args !== null);
  let instance = newInstance(engine, compiled, events, undefined, calls[0]?.name);
  try {
    instance.link();
  } catch (error) {
    events.push(`instantiate: ${errorEvent(error).event}`);
    return { events, memory: undefined, exhausted: false };
  }
  try {
    // With nothing to call, one run still runs the start function (plain V8 ran it while instantiating).
    const runs = calls.length > 0 ? calls : [{ name: undefined, args: [] as unknown[] }];
    for (const [i, call] of runs.entries()) {
      instance.suspendAfterFuel(nextPoint(instance.fuelConsumed));
      // The first call was named when the instance was made.
      let status: Status = await instance.run({ function: i === 0 ? undefined : call.name, args: call.args! });
      while (status.state === State.SUSPENDED && status.cause === 'NORMAL') {
        suspensions++;
        stats.suspensions++;
        if (random.chance(restore)) {
          ({ instance, compiled } = await throughSnapshot(engine, instance, compiled, events));
          stats.restores++;
        }
        instance.suspendAfterFuel(nextPoint(instance.fuelConsumed));
        // A restored instance does not know the call's arguments: they are
        // only placeholders while the stack rewinds, but must have the right types.
        status = await instance.run({ args: call.args! });
      }
      // A trap that leaves the instance final happened in the start function,
      // which plain V8 runs while instantiating.
      const inStart = instance.currentStatus.state !== State.HALTED;
      const what = inStart ? 'instantiate:' : call.name;
      if (status.state === State.HALTED && status.cause === 'NORMAL') {
        if (call.name !== undefined) events.push(`${call.name} returned ${formatValue(instance.returned)}`);
      } else if (status.cause === 'CALL_STACK_EXHAUSTED') {
        events.push(`${what} exhausted`);
        return { events, memory: undefined, exhausted: true };
      } else if (status.cause !== 'NORMAL' && status.cause !== 'INTERNAL') {
        events.push(`${what} trap ${status.cause}`);
        if (inStart) return { events, memory: undefined, exhausted: false };
      } else {
        events.push(`${what} stopped ${status.state} ${status.cause}${status.error ? `: ${status.error}` : ''}${status.limit ? ` (${status.limit} limit)` : ''}`);
        return { events, memory: undefined, exhausted: false };
      }
    }
    readGlobals(instance.exports, events);
  } catch (error) {
    // Our engine refused to go on: always a difference, reported as one.
    events.push(`engine threw ${describeError(error)}`);
    return { events, memory: undefined, exhausted: false };
  }
  const memory = instance.exports[MEMORY_EXPORT];
  return { events, memory: memory instanceof WebAssembly.Memory ? new Uint8Array(memory.buffer).slice() : undefined, exhausted: false };
}

function describeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return `${e?.name ?? typeof error}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? String(error)}`;
}

/** The first difference between two outcomes, or undefined when they agree. */
export function difference(plain: Outcome, ours: Outcome): string | undefined {
  // A stack exhausted on either side ends the comparison at that call:
  // instrumented frames are larger, so the depth at which it happens differs.
  const exhausted = plain.exhausted || ours.exhausted;
  const n = Math.min(plain.events.length, ours.events.length);
  for (let i = 0; i < n; i++) {
    if (plain.events[i] === ours.events[i]) continue;
    if (exhausted) return undefined;
    return `event ${i}: plain "${plain.events[i]}", ours "${ours.events[i]}" (after "${plain.events[i - 1] ?? ''}")`;
  }
  if (exhausted) return undefined;
  if (plain.events.length !== ours.events.length) {
    return `events: plain has ${plain.events.length}, ours ${ours.events.length}; next: "${plain.events[n] ?? ours.events[n]}"`;
  }
  const a = plain.memory;
  const b = ours.memory;
  if ((a === undefined) !== (b === undefined)) return 'memory: only one run has one';
  if (a && b) {
    if (a.byteLength !== b.byteLength) return `memory size: plain ${a.byteLength}, ours ${b.byteLength}`;
    for (let i = 0; i < a.byteLength; i++) {
      if (a[i] !== b[i]) return `memory at ${i}: plain ${a[i]}, ours ${b[i]}`;
    }
  }
  return undefined;
}

/** An engine scheduled with setImmediate, which (unlike the default MessageChannel) lets the process exit. */
export function newEngine(): Engine {
  return nodeEngine();
}
