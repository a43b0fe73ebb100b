// A program instance: its memory, its packet channel, and the state machine of
// its runs (start or resume until halt, exit, trap, suspension or kill). The
// engine gives it time slices; between slices its wasm stack is unwound into
// a byte buffer by Asyncify, so a waiting or preempted instance holds no
// thread and can be suspended at once.

import type { AbiHost, WaitOutcome, WaitRequest } from '../abi/host.ts';
import { createImports, isBlockingImport } from '../abi/imports.ts';
import { resolutionFor } from '../abi/time.ts';
import type { PreparedModule } from '../prepare/prepared.ts';
import {
  ASYNCIFY_MEMORY_IMPORT,
  ENGINE_MODULE,
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  MEMORY_IMPORT,
  NO_UNWIND_EXPORT,
  START_EXPORT,
  TICK_IMPORT,
} from '../prepare/names.ts';
import type { ServiceContext, ServiceRegistry } from '../service/service.ts';
import { PacketChannel, type ChannelState } from './channel.ts';
import type { Engine } from './engine.ts';
import { AbiViolation, Exit, Trap } from './errors.ts';
import { Cause, State, type Limit, type Status } from './status.ts';
import { trapCause } from './trap.ts';
import type { GlobalValue, InstanceState } from '../snapshot/state.ts';

/** A prepared module compiled for this realm. */
export interface CompiledModule {
  prepared: PreparedModule;
  module: WebAssembly.Module;
  /** The module it was prepared from (what a snapshot copies its code from). */
  program: Uint8Array;
}

export interface InstanceOptions {
  engine: Engine;
  compiled: CompiledModule;
  /** The services for one run: called at the start of every run (services are per run). */
  services: () => ServiceRegistry;
  context: ServiceContext;
  /** Entry function name; empty or undefined for the default (_start or none). */
  function?: string;
  /** Debug log sink; when absent the log is disabled. */
  debug?: (chunk: Uint8Array) => void;
  /** Time resolution policy in nanoseconds (Gate's default 10 ms). */
  timeResolution?: number;
  /** Stop the program after it has used this much fuel (about one unit per instruction). */
  fuelLimit?: number;
  /** Stop the program after it has run this many milliseconds in all. */
  timeLimit?: number;
  /** Clocks, for tests. */
  clock?: { realtime(): bigint; monotonic(): bigint };
  /** Fill a buffer with cryptographically random bytes. */
  random?: (buffer: Uint8Array) => void;
  /** Continue from a captured state (a snapshot) instead of starting fresh. */
  restore?: InstanceState;
  /**
   * Embedder mode: link the program to these imports instead of Gate's ABI
   * (for modules prepared with `abi: false`, such as the spec suite's). Any
   * exported function can then be run, with arguments; its return value is
   * kept (`returned`); and a trap or stack exhaustion ends the call, not the
   * instance, which stays callable (HALTED). The same preparation, fuel,
   * unwinding and capture code runs as for Gate programs. Imported functions
   * must not call back into this instance.
   */
  imports?: WebAssembly.Imports;
  /** How an entry function is called in embedder mode; default `fn(...args)`. */
  invoke?: (fn: (...args: unknown[]) => unknown, args: readonly unknown[]) => unknown;
}

/** Bad input from whoever launched the instance (not the program's fault). */
export class InstanceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'InstanceError';
    this.code = code;
  }
}

/** A kill request ended a run that could not be unwound. */
class Killed extends Error {}

/** A resource limit ended the run. */
class LimitExceeded extends Error {
  readonly limit: Limit;
  constructor(limit: Limit, message: string) {
    super(message);
    this.limit = limit;
  }
}

type Phase = 'start' | 'entry';
type UnwindReason = 'preempt' | 'wait' | 'deficiency';

interface AsyncifyExports {
  asyncify_start_unwind(addr: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(addr: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
}

const ASYNCIFY_UNWINDING = 1;
const ASYNCIFY_REWINDING = 2;
/** Fuel granted per tick: about a millisecond of work, so the slice clock is read often enough. */
const FUEL_GRANT = 1_000_000;
/** Fuel granted by a tick that cannot unwind (see NO_UNWIND_EXPORT): the next chance comes soon. */
const NO_UNWIND_GRANT = 10_000;
/**
 * How long past the end of its slice a program may run inside a function
 * that holds references (and so cannot be unwound) before it is killed: it
 * holds the whole thread meanwhile. Compiled C and Rust never hold references.
 */
export const PREEMPTION_LIMIT_MS = 1000;
const RANDOM_POOL_SIZE = 16;
const NS_PER_MS = 1_000_000n;

function defaultClock(): { realtime(): bigint; monotonic(): bigint } {
  return {
    realtime: () => BigInt(Date.now()) * NS_PER_MS + BigInt(Math.floor((performance.now() % 1) * 1e6)),
    monotonic: () => BigInt(Math.floor(performance.now() * 1e6)),
  };
}

export class Instance {
  private readonly engine: Engine;
  private readonly compiled: CompiledModule;
  private readonly services: () => ServiceRegistry;
  private readonly context: ServiceContext;
  private readonly debugSink: ((chunk: Uint8Array) => void) | undefined;
  private readonly resolution: bigint;
  private readonly fuelLimit: number;
  private readonly timeLimit: number;
  private readonly clock: { realtime(): bigint; monotonic(): bigint };
  private readonly fillRandom: (buffer: Uint8Array) => void;
  private readonly embedderImports: WebAssembly.Imports | undefined;
  private readonly invokeEntry: ((fn: (...args: unknown[]) => unknown, args: readonly unknown[]) => unknown) | undefined;
  private entryArgs: readonly unknown[] = [];
  private returnValue: unknown;

  private memory!: WebAssembly.Memory;
  private instance: WebAssembly.Instance | undefined;
  private asyncify: AsyncifyExports | undefined;
  private fuel: WebAssembly.Global | undefined;
  /** How many functions that Asyncify cannot unwind are on the stack (absent when the program has none). */
  private noUnwind: WebAssembly.Global | undefined;

  // Program state that survives between runs.
  private entry: string | undefined;
  private phase: Phase = 'start';
  private stack: Uint8Array | undefined; // saved Asyncify data while unwound
  private waitMemo: bigint[] | undefined; // the program is unwound inside a wait
  private channelState: ChannelState = { services: [], input: new Uint8Array(0), output: new Uint8Array(0) };
  private monotonicSaved = 0n; // instance monotonic clock at the end of the last run
  private fuelUsed = 0;
  private timeUsed = 0;
  private status: Status = { state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 };
  private stuck: Status | undefined; // a stop that a resume cannot get past

  // Per-run state.
  private running = false; // a run is in progress
  private closing = false; // the run has stopped; services are saving their state
  private executing = false; // wasm is on the stack right now
  private channel: PacketChannel | undefined;
  private rewinding = false;
  private unwindReason: UnwindReason | undefined;
  private waitRequest: WaitRequest | undefined;
  private waitOutcome: WaitOutcome | undefined;
  private waitTimer: ReturnType<typeof setTimeout> | undefined;
  private parked = false;
  private suspendRequested = false;
  private killRequested = false;
  private abortError: Error | undefined;
  private sliceDeadline = 0;
  private suspendAt = Infinity;
  private stepBegan = 0;
  private fuelGranted = 0;
  private randomPool = new Uint8Array(0);
  private resumedFlag = false;
  private monotonicBase = 0n;
  private debugLast = -1; // last byte written to the debug log in this run, -1 for none
  private settle: ((status: Status) => void) | undefined;

  readonly abi: AbiHost;

  constructor(options: InstanceOptions) {
    this.engine = options.engine;
    this.compiled = options.compiled;
    this.services = options.services;
    this.context = options.context;
    this.debugSink = options.debug;
    this.resolution = resolutionFor(options.timeResolution ?? 10_000_000);
    this.fuelLimit = options.fuelLimit ?? Infinity;
    this.timeLimit = options.timeLimit ?? Infinity;
    this.clock = options.clock ?? defaultClock();
    this.fillRandom = options.random ?? ((b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>));
    this.embedderImports = options.imports;
    this.invokeEntry = options.invoke;
    const { initial, maximum } = this.compiled.prepared.info.memory;
    this.abi = this.makeAbiHost();
    if (options.restore) {
      this.memory = this.restoreState(options.restore, maximum);
      return;
    }
    // In embedder mode there is no default entry (no _start convention).
    this.entry = this.embedderImports ? options.function || undefined : resolveEntry(this.compiled.prepared.info.entries, options.function);
    if (!this.compiled.prepared.info.hasStart) this.phase = 'entry';
    this.memory = new WebAssembly.Memory(maximum === null ? { initial } : { initial, maximum });
  }

  private restoreState(state: InstanceState, maximum: number | null): WebAssembly.Memory {
    const pages = state.memory.byteLength / 65536;
    if (maximum !== null && pages > maximum) {
      throw new InstanceError(
        'ERR_MEMORY_LIMIT',
        `snapshot memory size exceeds instance memory size limit (${pages} pages > ${maximum} pages)`,
      );
    }
    const memory = new WebAssembly.Memory(maximum === null ? { initial: pages } : { initial: pages, maximum });
    this.memory = memory;
    this.status = { ...state.status };
    this.channelState = state.channel;
    this.monotonicSaved = state.monotonic;
    this.fuelUsed = state.fuelUsed;
    this.timeUsed = state.timeUsed;
    if (state.status.cause === Cause.CALL_STACK_EXHAUSTED && !this.embedderImports) this.stuck = { ...state.status };
    const pending = state.pending;
    if (pending) {
      if (pending.entry !== undefined && !this.embedderImports && !this.compiled.prepared.info.entries.includes(pending.entry)) {
        throw new InstanceError('ERR_ENTRY_NOT_FOUND', `snapshot entry function ${pending.entry} is not exported`);
      }
      if (pending.phase === 'start' && !this.compiled.prepared.info.hasStart) {
        throw new InstanceError('ERR_SNAPSHOT_STATE', 'snapshot is in a start function the program does not have');
      }
      this.phase = pending.phase;
      this.entry = pending.entry;
      this.stack = pending.stack.byteLength > 0 ? pending.stack.slice() : undefined;
      this.waitMemo = pending.waitMemo;
    } else {
      this.phase = 'entry';
    }
    // Instantiation applies the element segments; memory and globals come from the state.
    this.instantiate();
    new Uint8Array(memory.buffer).set(state.memory);
    for (const [index, value] of state.globals) this.global(index).value = value;
    if (pending?.entry !== undefined && this.embedderImports) this.checkExportedFunction(pending.entry);
    return memory;
  }

  /**
   * Instantiate now (otherwise the first run does): link errors and traps in
   * segment initialization are thrown here, as V8 reports them.
   */
  link(): void {
    this.instantiate();
  }

  /** The instance's exports (it is instantiated if it was not yet). */
  get exports(): WebAssembly.Exports {
    this.instantiate();
    return this.instance!.exports;
  }

  /** Embedder mode: what the entry function returned in the run that halted last. */
  get returned(): unknown {
    return this.returnValue;
  }

  private checkExportedFunction(name: string): void {
    if (typeof this.exports[name] !== 'function') {
      throw new InstanceError('ERR_ENTRY_NOT_FOUND', `function not exported: ${name}`);
    }
  }

  private global(index: number): WebAssembly.Global {
    const g = this.instance!.exports[GLOBAL_EXPORT_PREFIX + index];
    if (!(g instanceof WebAssembly.Global)) throw new InstanceError('ERR_SNAPSHOT_STATE', `global ${index} is not mutable`);
    return g;
  }

  /** Everything needed to continue this instance elsewhere. Only between runs. */
  capture(): InstanceState {
    if (this.running) throw new InstanceError('ERR_INSTANCE_RUNNING', 'instance is running');
    // An instance that never ran is instantiated now, for its initial memory and globals.
    this.instantiate();
    const globals = new Map<number, GlobalValue>();
    for (const index of this.compiled.prepared.info.mutableGlobals) globals.set(index, this.global(index).value as GlobalValue);
    const state: InstanceState = {
      status: { ...this.status },
      memory: new Uint8Array(this.memory.buffer).slice(),
      globals,
      channel: this.channelState,
      monotonic: this.monotonicSaved,
      fuelUsed: this.fuelUsed,
      timeUsed: this.timeUsed,
    };
    if (this.status.state === State.SUSPENDED) {
      state.pending = { phase: this.phase, entry: this.entry, stack: this.stack ?? new Uint8Array(0) };
      if (this.waitMemo) state.pending.waitMemo = this.waitMemo;
    }
    return state;
  }

  /** The status of the last run (RUNNING while one is in progress). */
  get currentStatus(): Status {
    return this.running ? { state: State.RUNNING, cause: Cause.NORMAL, result: 0 } : this.status;
  }

  /** Fuel the program has used in all its runs. */
  get fuelConsumed(): number {
    return this.fuelUsed + (this.executing ? this.fuelGranted - this.fuelValue() : 0);
  }

  /**
   * Start the first run, or resume a suspended or halted instance. Resolves when the run stops.
   * `args` (embedder mode) are the entry function's arguments; when a suspended call is
   * resumed they are passed again while its stack is rewound, which restores the real
   * values, so any values of the right types do.
   */
  run(options: { function?: string; args?: readonly unknown[] } = {}): Promise<Status> {
    if (this.running) throw new InstanceError('ERR_INSTANCE_RUNNING', 'instance is running');
    const { state } = this.status;
    if (state === State.TERMINATED || state === State.KILLED) {
      throw new InstanceError('ERR_INSTANCE_FINAL', `instance is ${state.toLowerCase()}`);
    }
    // Any name may be exported in embedder mode, even an empty one.
    if (this.embedderImports ? options.function !== undefined : options.function) {
      if (state !== State.HALTED) {
        throw new InstanceError('ERR_INSTANCE_STATE', 'function may be specified only when resuming a halted instance');
      }
      if (this.embedderImports) {
        this.checkExportedFunction(options.function!);
        this.entry = options.function;
      } else {
        this.entry = resolveEntry(this.compiled.prepared.info.entries, options.function);
      }
    }
    if (options.args) this.entryArgs = options.args;
    if (state === State.HALTED) {
      if (options.function === undefined || (!this.embedderImports && !options.function)) {
        throw new InstanceError('ERR_INSTANCE_STATE', 'halted instance can be resumed only with a function');
      }
      this.phase = 'entry';
    }
    return new Promise<Status>((resolve) => {
      this.settle = resolve;
      this.beginRun();
    });
  }

  /** Ask a running instance to suspend at its next opportunity (within a time slice). */
  suspend(): void {
    if (!this.running) return;
    this.suspendRequested = true;
    if (!this.executing) this.stopIdle();
  }

  /**
   * Suspend at the first fuel check after the program has used this much fuel
   * in all (deterministic suspension points, for tests and debugging).
   */
  suspendAfterFuel(fuel: number): void {
    this.suspendAt = fuel;
  }

  /** Kill the instance: final state KILLED. */
  kill(): void {
    if (!this.running) {
      if (this.status.state === State.SUSPENDED || this.status.state === State.HALTED) {
        this.status = { state: State.KILLED, cause: Cause.NORMAL, result: 0 };
      }
      return;
    }
    this.killRequested = true;
    if (!this.executing) this.stopIdle();
  }

  /** Origin and other services need the run's channel only through services; exposed for the host's bookkeeping. */
  get bytesForProgram(): number {
    return this.channel?.pending ?? 0;
  }

  private beginRun(): void {
    this.running = true;
    this.suspendRequested = false;
    this.killRequested = false;
    this.abortError = undefined;
    this.resumedFlag = true;
    this.randomPool = new Uint8Array(RANDOM_POOL_SIZE);
    this.fillRandom(this.randomPool);
    this.monotonicBase = this.clock.monotonic() - 1_000_000_000n;
    this.debugLast = -1;
    if (this.waitMemo) {
      // Resumed inside a wait: the wait ends as interrupted (nothing ready).
      this.waitOutcome = { readable: false, writable: false, memo: this.waitMemo };
      this.waitMemo = undefined;
    }
    this.channel = new PacketChannel(this.services(), this.context, {
      readable: () => this.wake(),
      abort: (error) => this.abort(error),
    });
    try {
      this.channel.restore(this.channelState);
    } catch (error) {
      this.finish(this.errorStatus(error));
      return;
    }
    if (this.stuck) {
      this.finish(this.stuck);
      return;
    }
    if (this.phase === 'entry' && this.entry === undefined) {
      // No start section and no entry function: the instance only initializes.
      try {
        this.instantiate();
      } catch (error) {
        this.finish(this.errorStatus(error));
        return;
      }
      this.finish({ state: State.HALTED, cause: Cause.NORMAL, result: 0 });
      return;
    }
    this.engine.enqueue(this);
  }

  /** Engine entry point: run one slice. */
  step(deadline: number): void {
    if (!this.running) return;
    if (this.killRequested || this.suspendRequested || this.abortError) {
      this.stopIdle();
      return;
    }
    this.sliceDeadline = deadline;
    this.stepBegan = this.engine.now();
    this.executing = true;
    let failure: unknown;
    let failed = false;
    try {
      this.instantiate();
      this.callPhase();
    } catch (error) {
      failed = true;
      failure = error;
    }
    this.executing = false;
    this.timeUsed += this.engine.now() - this.stepBegan;
    this.absorbFuel();
    if (failed) {
      const status = this.errorStatus(failure);
      this.resetAsyncify();
      this.finish(status);
      if (this.embedderImports && this.phase === 'entry' && status.cause !== Cause.NORMAL && status.cause !== Cause.INTERNAL) {
        // Embedder mode: the trap ended the call; the instance stays callable.
        this.status = { state: State.HALTED, cause: Cause.NORMAL, result: 0 };
      }
      return;
    }

    const asyncify = this.asyncify!;
    if (asyncify.asyncify_get_state() === ASYNCIFY_UNWINDING) {
      asyncify.asyncify_stop_unwind();
      this.saveStack();
      const reason = this.unwindReason;
      this.unwindReason = undefined;
      if (reason === 'deficiency') {
        this.finish({ state: State.SUSPENDED, cause: Cause.ABI_DEFICIENCY, result: 0 });
      } else if (this.abortError || this.killRequested || this.suspendRequested) {
        this.stopIdle();
      } else if (reason === 'wait') {
        this.park();
      } else {
        this.engine.enqueue(this);
      }
      return;
    }
    // The phase's export returned.
    if (this.phase === 'start') {
      this.phase = 'entry';
      if (this.entry !== undefined) {
        this.engine.enqueue(this);
        return;
      }
    }
    this.finish({ state: State.HALTED, cause: Cause.NORMAL, result: 0 });
  }

  private instantiate(): void {
    if (this.instance) return;
    if (this.embedderImports) {
      this.instance = new WebAssembly.Instance(this.compiled.module, {
        ...this.embedderImports,
        [ENGINE_MODULE]: this.engineImports(),
      });
      this.asyncify = this.instance.exports as unknown as AsyncifyExports;
      this.fuel = this.instance.exports[FUEL_EXPORT] as WebAssembly.Global;
      this.noUnwind = this.instance.exports[NO_UNWIND_EXPORT] as WebAssembly.Global | undefined;
      return;
    }
    const imports = createImports(this.abi, this.compiled.prepared.info.imports) as Record<
      string,
      Record<string, WebAssembly.ImportValue>
    >;
    // Imports that may unwind are re-entered when the stack is rewound; stop
    // the rewind before running them again.
    for (const imp of this.compiled.prepared.info.imports) {
      if (imp.kind !== 'func' || !isBlockingImport(imp.module, imp.field)) continue;
      const fn = imports[imp.module][imp.field] as (...args: unknown[]) => unknown;
      imports[imp.module][imp.field] = (...args: unknown[]) => {
        this.endRewind();
        return fn(...args);
      };
    }
    imports[ENGINE_MODULE] = this.engineImports();
    this.instance = new WebAssembly.Instance(this.compiled.module, imports);
    this.asyncify = this.instance.exports as unknown as AsyncifyExports;
    this.fuel = this.instance.exports[FUEL_EXPORT] as WebAssembly.Global;
    this.noUnwind = this.instance.exports[NO_UNWIND_EXPORT] as WebAssembly.Global | undefined;
  }

  private engineImports(): Record<string, WebAssembly.ImportValue> {
    return {
      [TICK_IMPORT]: () => this.tick(),
      [MEMORY_IMPORT]: this.memory,
      [ASYNCIFY_MEMORY_IMPORT]: this.engine.asyncifyMemory,
    };
  }

  private callPhase(): void {
    const name = this.phase === 'start' ? START_EXPORT : this.entry!;
    const fn = this.instance!.exports[name] as (...args: unknown[]) => unknown;
    if (this.stack) {
      this.loadStack();
      this.rewinding = true;
      this.asyncify!.asyncify_start_rewind(0);
    } else if (this.noUnwind) {
      // A fresh call; a trap may have left the count up.
      this.noUnwind.value = 0;
    }
    this.grantFuel();
    if (this.phase === 'start') fn();
    else if (this.invokeEntry) this.returnValue = this.invokeEntry(fn, this.entryArgs);
    else this.returnValue = fn(...this.entryArgs);
  }

  private endRewind(): void {
    if (this.rewinding) {
      this.rewinding = false;
      this.asyncify!.asyncify_stop_rewind();
    }
  }

  private fuelValue(): number {
    return this.fuel ? (this.fuel.value as number) : 0;
  }

  private grantFuel(): void {
    // A grant never runs past the fuel limit or a requested suspension point.
    const grant = Math.max(0, Math.min(FUEL_GRANT, this.fuelLimit - this.fuelUsed, this.suspendAt - this.fuelUsed));
    this.fuelGranted = grant;
    this.fuel!.value = grant;
  }

  /** Move fuel spent since the last grant to the total. */
  private absorbFuel(): void {
    if (!this.fuel) return;
    this.fuelUsed += this.fuelGranted - this.fuelValue();
    this.fuelGranted = 0;
    this.fuel.value = 0;
  }

  /** The program ran out of fuel: decide whether it goes on. */
  private tick(): number {
    if (!this.executing) {
      // Entered from outside a run (another instance calling an export, in
      // embedder mode): there is no run to suspend, so the call just goes on.
      return FUEL_GRANT;
    }
    if (this.rewinding) {
      this.endRewind();
      this.grantFuel();
      return this.fuelGranted;
    }
    this.absorbFuel();
    if (this.abortError) throw this.abortError;
    if (this.fuelUsed >= this.fuelLimit) {
      throw new LimitExceeded('fuel', `fuel limit exceeded: ${this.fuelLimit}`);
    }
    const now = this.engine.now();
    if (this.timeUsed + (now - this.stepBegan) >= this.timeLimit) {
      throw new LimitExceeded('time', `time limit exceeded: ${this.timeLimit} ms`);
    }
    if (this.fuelUsed >= this.suspendAt) {
      this.suspendAt = Infinity;
      this.suspendRequested = true;
    }
    if (now >= this.sliceDeadline || this.suspendRequested || this.killRequested) {
      if (!this.canUnwind()) {
        // Inside a function that holds references: no unwinding until it
        // returns, so check again soon. A kill needs no stack; a program that
        // keeps the thread too long past its slice ends.
        if (this.killRequested) throw new Killed();
        if (now - this.sliceDeadline > PREEMPTION_LIMIT_MS) {
          throw new LimitExceeded('preemption', `preemption limit exceeded: the program ran ${PREEMPTION_LIMIT_MS} ms past its time slice inside a function that holds references, where it cannot be suspended`);
        }
        this.fuelGranted = Math.max(1, Math.min(NO_UNWIND_GRANT, this.fuelLimit - this.fuelUsed));
        this.fuel!.value = this.fuelGranted;
        return this.fuelGranted;
      }
      this.startUnwind('preempt');
      return 0;
    }
    this.grantFuel();
    return this.fuelGranted;
  }

  private startUnwind(reason: UnwindReason): void {
    const view = new DataView(this.engine.asyncifyMemory.buffer);
    view.setUint32(0, 8, true);
    view.setUint32(4, this.engine.asyncifyMemory.buffer.byteLength, true);
    this.unwindReason = reason;
    this.asyncify!.asyncify_start_unwind(0);
  }

  private saveStack(): void {
    const buffer = this.engine.asyncifyMemory.buffer;
    const end = new DataView(buffer).getUint32(0, true);
    this.stack = new Uint8Array(buffer, 8, end - 8).slice();
  }

  private loadStack(): void {
    const buffer = this.engine.asyncifyMemory.buffer;
    const stack = this.stack!;
    new Uint8Array(buffer).set(stack, 8);
    const view = new DataView(buffer);
    // Rewinding reads the buffer backwards from where the unwind left it.
    view.setUint32(0, 8 + stack.byteLength, true);
    view.setUint32(4, buffer.byteLength, true);
    this.stack = undefined;
  }

  /** Waiting for I/O or a timer: hold no slice until something happens. */
  private park(): void {
    this.parked = true;
    const req = this.waitRequest!;
    if (this.isReady(req)) {
      this.wake();
      return;
    }
    if (req.timeout !== null) {
      const ms = Number(req.timeout / NS_PER_MS);
      this.waitTimer = setTimeout(() => this.wake(true), Math.max(0, ms));
    }
  }

  private isReady(req: WaitRequest): boolean {
    return (req.readable && this.channel!.readable()) || (req.writable && this.channel!.writable());
  }

  /** Readiness may have changed (or the wait timed out): resume a parked program. */
  private wake(timedOut = false): void {
    if (!this.parked || this.executing) return;
    const req = this.waitRequest!;
    if (!timedOut && !this.isReady(req)) return;
    this.parked = false;
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    this.waitOutcome = {
      readable: req.readable && this.channel!.readable(),
      writable: req.writable && this.channel!.writable(),
      memo: req.memo ?? [],
    };
    this.waitRequest = undefined;
    this.engine.enqueue(this);
  }

  private abort(error: Error): void {
    if (!this.running) return;
    this.abortError ??= error;
    if (!this.executing) this.stopIdle();
  }

  /** Stop a run that is not executing wasm right now: its stack (if any) is already saved. */
  private stopIdle(): void {
    if (!this.running || this.executing) return;
    this.engine.dequeue(this);
    if (this.parked && this.waitRequest) {
      // Interrupted inside a wait: the wait ends with nothing ready at resume.
      this.waitMemo = this.waitRequest.memo ?? [];
      this.waitRequest = undefined;
    }
    this.parked = false;
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    if (this.abortError) this.finish(this.errorStatus(this.abortError));
    else if (this.killRequested) this.finish({ state: State.KILLED, cause: Cause.NORMAL, result: 0 });
    else this.finish({ state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 });
  }

  /** Whether the stack can be unwound now: no function that holds references is on it (see NO_UNWIND_EXPORT). */
  private canUnwind(): boolean {
    return !this.noUnwind || (this.noUnwind.value as number) === 0;
  }

  /** A trap can leave Asyncify unwinding or rewinding: back to normal, so the instance's exports work. */
  private resetAsyncify(): void {
    const asyncify = this.asyncify;
    if (!asyncify) return;
    const state = asyncify.asyncify_get_state();
    if (state === ASYNCIFY_UNWINDING) asyncify.asyncify_stop_unwind();
    else if (state === ASYNCIFY_REWINDING) asyncify.asyncify_stop_rewind();
  }

  private errorStatus(error: unknown): Status {
    if (error instanceof Exit) return { state: State.TERMINATED, cause: Cause.NORMAL, result: error.result };
    if (error instanceof AbiViolation) {
      return { state: State.KILLED, cause: Cause.ABI_VIOLATION, result: 0, error: error.message };
    }
    if (error instanceof LimitExceeded) {
      return { state: State.KILLED, cause: Cause.NORMAL, result: 0, error: error.message, limit: error.limit };
    }
    if (error instanceof Killed) return { state: State.KILLED, cause: Cause.NORMAL, result: 0 };
    let cause: Cause | undefined;
    if (error instanceof Trap) cause = error.trapCause;
    else cause = trapCause(error);
    if (cause === Cause.UNREACHABLE && this.asyncify?.asyncify_get_state() === ASYNCIFY_UNWINDING) {
      // Asyncify's buffer overflowed while saving the stack.
      cause = Cause.CALL_STACK_EXHAUSTED;
    }
    if (cause === Cause.CALL_STACK_EXHAUSTED) {
      const status = { state: State.SUSPENDED, cause, result: 0 };
      // The wasm stack is gone; resuming would only exhaust it again.
      if (!this.embedderImports) this.stuck = status;
      return status;
    }
    if (cause !== undefined) return { state: State.KILLED, cause, result: 0 };
    return { state: State.KILLED, cause: Cause.INTERNAL, result: 0, error: internalMessage(error) };
  }

  private finish(status: Status): void {
    if (!this.running || this.closing) return;
    this.parked = false;
    this.rewinding = false;
    this.unwindReason = undefined;
    if (status.state !== State.SUSPENDED) {
      this.stack = undefined;
      this.waitMemo = undefined;
    }
    this.waitOutcome = undefined;
    this.monotonicSaved = this.monotonicNow();
    if (this.debugLast >= 0 && this.debugLast !== 0x0a) this.debugSink?.(Uint8Array.of(0x0a));
    const ok = status.state === State.SUSPENDED || status.state === State.HALTED;
    const waiting = this.channel?.prepareShutdown(ok);
    if (!waiting) {
      this.complete(status);
      return;
    }
    // Some service saves its state elsewhere: the run is over only when it has.
    this.closing = true;
    void waiting.then(() => this.complete(status));
  }

  private complete(status: Status): void {
    this.running = false;
    this.closing = false;
    if (this.channel) this.channelState = this.channel.close();
    this.channel = undefined;
    this.status = status;
    const settle = this.settle;
    this.settle = undefined;
    settle?.(status);
  }

  /** Instance-relative monotonic time (abi.md §2.3): stands still between runs. */
  private monotonicNow(): bigint {
    return this.monotonicSaved + (this.clock.monotonic() - this.monotonicBase);
  }

  private makeAbiHost(): AbiHost {
    return {
      bytes: () => new Uint8Array(this.memory.buffer),
      view: () => new DataView(this.memory.buffer),
      timeResolution: this.resolution,
      realtime: () => this.clock.realtime(),
      monotonic: () => this.monotonicNow(),
      random: (n: number): Uint8Array => {
        const take = Math.min(n, this.randomPool.byteLength);
        const out = this.randomPool.slice(0, take);
        this.randomPool = this.randomPool.subarray(take);
        return out;
      },
      debugEnabled: this.debugSink !== undefined,
      debug: (data: Uint8Array): void => {
        if (!this.debugSink || data.byteLength === 0) return;
        this.debugLast = data[data.byteLength - 1];
        this.debugSink(data.slice());
      },
      readable: () => this.channel!.readable(),
      writable: () => this.channel!.writable(),
      read: (dst) => this.channel!.read(dst),
      write: (src) => this.channel!.write(src),
      takeResumedFlag: (): boolean => {
        const flag = this.resumedFlag;
        this.resumedFlag = false;
        return flag;
      },
      wait: (request: WaitRequest): WaitOutcome | null => this.waitFor(request),
      deficiency: (): void => {
        // Below a function that holds references the stack cannot be saved: the run ends instead.
        if (!this.canUnwind()) throw new Trap(Cause.ABI_DEFICIENCY);
        this.startUnwind('deficiency');
      },
      exit: (status: number): never => {
        throw new Exit(status);
      },
      trap: (cause: Cause): never => {
        throw new Trap(cause);
      },
    };
  }

  /** AbiHost.wait: answer at once when possible, else unwind and park (see AbiHost). */
  private waitFor(request: WaitRequest): WaitOutcome | null {
    if (this.waitOutcome) {
      const outcome = this.waitOutcome;
      this.waitOutcome = undefined;
      return outcome;
    }
    if (this.abortError) throw this.abortError;
    // Below a function that holds references the stack cannot be saved: the wait polls.
    if (request.timeout === 0n || this.isReady(request) || !this.canUnwind()) {
      return {
        readable: request.readable && this.channel!.readable(),
        writable: request.writable && this.channel!.writable(),
        memo: request.memo ?? [],
      };
    }
    this.waitRequest = request;
    this.startUnwind('wait');
    return null;
  }
}

function resolveEntry(entries: readonly string[], name: string | undefined): string | undefined {
  const hasStart = entries.includes('_start');
  if (!name || (name === '_start' && !hasStart)) return hasStart ? '_start' : undefined;
  if (hasStart) {
    throw new InstanceError('ERR_ENTRY_WITH_START', 'entry function may not be specified for program with _start function');
  }
  if (!entries.includes(name)) {
    throw new InstanceError('ERR_ENTRY_NOT_FOUND', 'function not exported or it cannot be used as entry function');
  }
  return name;
}

function internalMessage(error: unknown): string {
  return error instanceof Error ? `internal error: ${error.message}` : 'internal error';
}
