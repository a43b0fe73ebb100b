// The modes that run through Gate's engine: modules prepared by the same code
// that prepares programs (prepareModule with `abi: false`: the runner links
// the imports), run by Instance in embedder mode.
//
// - prepared: fuel that never runs out (time slices may still preempt).
// - preempted: every call is suspended after a few dozen units of fuel and
//   resumed, so its stack is unwound to the host and rewound many times.
// - restored: as preempted, and at every suspension the instance is written
//   as a snapshot module by Gate's snapshot writer, read back, and the call
//   continues in a fresh instance restored from it.

import { createHash } from 'node:crypto';
import type { Engine } from '../../src/runtime/instance/engine.ts';
import { Instance, type CompiledModule } from '../../src/runtime/instance/instance.ts';
import { Cause, State, type Status } from '../../src/runtime/instance/status.ts';
import { prepareModule } from '../../src/runtime/prepare/prepare.ts';
import { setSha256, SnapshotError } from '../../src/runtime/snapshot/format.ts';
import { instrumentationOf } from '../../src/runtime/snapshot/instrumentation.ts';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { writeSnapshot, type Instrumentation } from '../../src/runtime/snapshot/write.ts';
import type { InstanceState } from '../../src/runtime/snapshot/state.ts';
import type { ServiceRegistry } from '../../src/runtime/service/service.ts';
import type { FuncType, ModuleInfo } from '../../src/runtime/wasm/module.ts';
import { parseModule } from '../../src/runtime/wasm/module.ts';
import { errorOutcome, exportedFunction, globalOutcome } from './plain.ts';
import type { Value } from './script.ts';
import { errorText, InstantiateFailure, type Handle, type ModeName, type Outcome, type Store } from './store.ts';
import { callWrapped, unwrapResults, wrapperArgs } from './values.ts';

/** wasm32's page limit: the spec's modules may use all of it, as on plain V8. */
const SPEC_MEMORY_PAGES = 65536;
/** A call that suspends this often makes no progress: fail it instead of hanging. */
const MAX_SUSPENSIONS_PER_CALL = 2_000_000;

// Snapshot digests with Node's hash, as the Node host does (WebCrypto hops to a thread per digest).
setSha256((bytes) => new Uint8Array(createHash('sha256').update(bytes).digest()));

const NO_SERVICES: ServiceRegistry = { lookup: () => undefined };
const CONTEXT = { instance: '00000000-0000-4000-8000-000000000000', scope: [] };

/** Prepared and compiled modules by content, shared by all modes and scripts. */
export class PreparedCache {
  private readonly entries = new Map<string, Promise<CompiledModule>>();
  private readonly instrumentations = new WeakMap<CompiledModule, Promise<Instrumentation>>();
  prepared = 0;

  get(bytes: Uint8Array): Promise<CompiledModule> {
    const key = createHash('sha256').update(bytes).digest('hex');
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.load(bytes);
      this.entries.set(key, entry);
      // A refusal is remembered too: the same module is refused the same way.
      entry.catch(() => {});
    }
    return entry;
  }

  private async load(bytes: Uint8Array): Promise<CompiledModule> {
    this.prepared++;
    const prepared = await prepareModule(bytes, { abi: false, maxMemoryPages: SPEC_MEMORY_PAGES });
    return { prepared, module: await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>), program: bytes };
  }

  instrumentation(compiled: CompiledModule): Promise<Instrumentation> {
    let i = this.instrumentations.get(compiled);
    if (!i) this.instrumentations.set(compiled, (i = instrumentationOf(compiled.prepared, compiled.program)));
    return i;
  }
}

/** Counts across a mode's run. */
export interface EngineStats {
  suspensions: number;
  restores: number;
  /** Suspensions past the restore limit, resumed in the same instance. */
  resumedInPlace: number;
  snapshotBytes: number;
  /** Suspended calls that could not be restored, by reason. */
  unrestorable: Map<string, number>;
}

interface EngineHandle extends Handle {
  instance: Instance;
  compiled: CompiledModule;
  /** The original module (signatures of its exports). */
  info: ModuleInfo;
  imports: WebAssembly.Imports;
  /** Signature of the function being called (the instance's invoke hook needs it). */
  sig?: FuncType;
  /** Why this module's state cannot be captured, once known. */
  unrestorable?: string;
}

export interface EngineStoreOptions {
  mode: Exclude<ModeName, 'plain'>;
  engine: Engine;
  cache: PreparedCache;
  /**
   * Fuel between suspensions (preempted and restored). The first suspension
   * of each call comes earlier, after 1 to `budget` units in turn, so that
   * short calls are suspended too, each at a different point.
   */
  budget: number;
  /**
   * Restored mode: restore at the first this many suspensions of a call, and
   * after that only at the 2^k-th ones (0: at every one).
   */
  restoreLimit?: number;
}

export class EngineStore implements Store<EngineHandle> {
  readonly mode: Exclude<ModeName, 'plain'>;
  readonly stats: EngineStats = { suspensions: 0, restores: 0, resumedInPlace: 0, snapshotBytes: 0, unrestorable: new Map() };
  private readonly engine: Engine;
  private readonly cache: PreparedCache;
  private readonly budget: number | undefined;
  private readonly restoreLimit: number;
  private calls = 0;

  constructor(options: EngineStoreOptions) {
    this.mode = options.mode;
    this.engine = options.engine;
    this.cache = options.cache;
    this.budget = options.mode === 'prepared' ? undefined : options.budget;
    this.restoreLimit = options.restoreLimit ?? 0;
  }

  private newInstance(h: EngineHandle, compiled: CompiledModule, restore?: InstanceState): Instance {
    return new Instance({
      engine: this.engine,
      compiled,
      services: () => NO_SERVICES,
      context: CONTEXT,
      imports: h.imports,
      invoke: (fn, args) => callWrapped(fn, h.sig!, args),
      // Saved arguments come as bits, which is what the wrapper takes (v128 as its two halves).
      savedArguments: (saved) => saved.flatMap((a) => (a.type === 'v128' ? (a.value as bigint[]) : [a.value])),
      restore,
    });
  }

  async instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports): Promise<EngineHandle> {
    let compiled: CompiledModule;
    try {
      compiled = await this.cache.get(bytes);
    } catch (error) {
      throw new InstantiateFailure(WebAssembly.validate(bytes) ? 'prepare' : 'invalid', errorText(error));
    }
    const h = { compiled, info: parseModule(bytes), imports: { ...imports }, registered: false } as EngineHandle;
    h.instance = this.newInstance(h, compiled);
    try {
      h.instance.link();
    } catch (error) {
      if (error instanceof WebAssembly.LinkError) throw new InstantiateFailure('link', errorText(error));
      const outcome = errorOutcome(error);
      throw new InstantiateFailure(error instanceof WebAssembly.RuntimeError ? 'trap' : 'error', errorText(error), outcome.kind === 'trap' ? outcome.cause : undefined);
    }
    // Runs the start function, if any, to HALTED.
    const { status } = await this.call(h, {});
    if (status.state !== State.HALTED) {
      const trap = status.cause !== Cause.NORMAL && status.cause !== Cause.INTERNAL;
      throw new InstantiateFailure(trap ? 'trap' : 'error', statusText(status), trap ? status.cause : undefined);
    }
    return h;
  }

  async invoke(h: EngineHandle, field: string, args: readonly Value[]): Promise<Outcome> {
    const index = exportedFunction(h.info, field);
    if (index === undefined || typeof h.instance.exports[field] !== 'function') return { kind: 'error', message: `no exported function ${field}` };
    h.sig = h.info.functionSignature(index);
    let result: { status: Status; skip?: string };
    try {
      result = await this.call(h, { function: field, args: wrapperArgs(args) });
    } catch (error) {
      return { kind: 'error', message: errorText(error) };
    }
    const { status, skip } = result;
    if (status.state === State.HALTED) return { kind: 'values', values: unwrapResults(h.sig, h.instance.returned), skip };
    if (status.cause !== Cause.NORMAL && status.cause !== Cause.INTERNAL) {
      return { kind: 'trap', cause: status.cause, message: statusText(status), skip };
    }
    return { kind: 'error', message: statusText(status), skip };
  }

  /** One run to its end, suspending and resuming (and restoring) as the mode says. */
  private async call(h: EngineHandle, options: { function?: string; args?: unknown[] }): Promise<{ status: Status; skip?: string }> {
    let inst = h.instance;
    if (this.budget !== undefined) inst.suspendAfterFuel(inst.fuelConsumed + 1 + (this.calls++ % this.budget));
    let status = await inst.run(options);
    let skip: string | undefined;
    let suspensions = 0;
    while (status.state === State.SUSPENDED && status.cause === Cause.NORMAL) {
      this.stats.suspensions++;
      if (++suspensions > MAX_SUSPENSIONS_PER_CALL) throw new Error(`call suspended ${MAX_SUSPENSIONS_PER_CALL} times without finishing`);
      const limited = this.restoreLimit > 0 && suspensions > this.restoreLimit && (suspensions & (suspensions - 1)) !== 0;
      if (this.mode === 'restored' && limited) this.stats.resumedInPlace++;
      if (this.mode === 'restored' && !limited && skip === undefined) {
        skip = h.registered ? 'exports linked into other modules' : h.unrestorable;
        if (skip === undefined) {
          try {
            inst = await this.restore(h);
          } catch (error) {
            if (!(error instanceof SnapshotError && error.code === 'ERR_SNAPSHOT_UNSUPPORTED')) throw error;
            skip = h.unrestorable = error.message;
          }
        }
        if (skip !== undefined) this.stats.unrestorable.set(skip, (this.stats.unrestorable.get(skip) ?? 0) + 1);
      }
      if (this.budget !== undefined) inst.suspendAfterFuel(inst.fuelConsumed + this.budget);
      status = await inst.run({ args: options.args });
    }
    return { status, skip };
  }

  /** Snapshot the suspended instance and continue in a fresh one restored from the snapshot. */
  private async restore(h: EngineHandle): Promise<Instance> {
    const state = h.instance.capture();
    const file = await writeSnapshot(h.compiled.program, state, await this.cache.instrumentation(h.compiled));
    this.stats.snapshotBytes += file.byteLength;
    const snapshot = await readSnapshot(file);
    const compiled = await this.cache.get(snapshot.program);
    const mine = await this.cache.instrumentation(compiled);
    const theirs = snapshot.instrumenter;
    if (state.pending && state.pending.stack.byteLength > 0) {
      if (!theirs || theirs.version !== mine.version || !theirs.codeHash.every((b, i) => b === mine.codeHash[i])) {
        throw new Error('the snapshot program prepares to different code than the program it was taken from');
      }
    }
    const fresh = this.newInstance(h, compiled, snapshot.state);
    h.instance = fresh;
    h.compiled = compiled;
    this.stats.restores++;
    return fresh;
  }

  get(h: EngineHandle, field: string): Outcome {
    return globalOutcome(h.instance.exports, field);
  }

  exports(h: EngineHandle): WebAssembly.ModuleImports {
    return h.instance.exports as WebAssembly.ModuleImports;
  }

  async refusal(bytes: Uint8Array<ArrayBuffer>): Promise<string | undefined> {
    try {
      await this.cache.get(bytes);
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  }
}

function statusText(status: Status): string {
  return `${status.state} ${status.cause}${status.error ? `: ${status.error}` : ''}`;
}
