// A program instance: its memory, its packet channel, and the state machine of
// its runs (start or resume until halt, exit, trap, suspension or kill). The
// engine gives it time slices; between slices its wasm stack is taken down
// (stack-machinery.ts), so a waiting or preempted instance holds no thread
// and can be suspended at once.

import type { AbiHost, WaitOutcome, WaitRequest } from '../abi/host.ts';
import { createImports, isBlockingImport } from '../abi/imports.ts';
import { resolutionFor } from '../abi/time.ts';
import type { PreparedModule } from '../prepare/prepared.ts';
import {
  DROP_DATA_PREFIX,
  DROP_ELEM_PREFIX,
  DROPPED_DATA_PREFIX,
  DROPPED_ELEM_PREFIX,
  ENGINE_MODULE,
  FUEL_EXPORT,
  FUNCTIONS_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  MEMORY_IMPORT,
  START_EXPORT,
  TABLE_EXPORT_PREFIX,
} from '../prepare/names.ts';
import type { ServiceContext, ServiceRegistry } from '../service/service.ts';
import { PacketChannel, type ChannelState } from './channel.ts';
import type { Engine } from './engine.ts';
import { AbiViolation, Exit, InstanceError, Trap } from './errors.ts';
import { FuelMeter, LimitExceeded } from './fuel-meter.ts';
import { fillMemory, MemoryPoolFull } from './memory-pool.ts';
import { argumentValue, PortableStack, type PortableSaved, type SavedArgument, type TickHost } from './portable-stack.ts';
import { portableFromSnapshot, portableForSnapshot, entryParamTypes, type FunctionReferences } from './stack-frames.ts';
import { Cause, State, type Status } from './status.ts';
import { trapCause } from './trap.ts';
import type { DroppedSegments, GlobalValue, InstanceState, PendingExecution } from '../snapshot/state.ts';
import { SnapshotError } from '../snapshot/format.ts';

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
   * With `restore` of a run that hibernated in a wait (PendingExecution.wait):
   * go on waiting as if the run had never stopped (the clock ran on, the
   * wait is not interrupted, nothing tells the program it was resumed),
   * instead of resuming it as a suspended program.
   */
  continueWait?: boolean;
  /** Told when the run begins waiting (true) and when the wait ends (false): a host hibernates instances that wait long. */
  onWaiting?: (waiting: boolean) => void;
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
  /**
   * Embedder mode with `invoke`: the arguments `invoke` takes, from those
   * saved with a suspended call (which its stack restores; see SavedArgument).
   */
  savedArguments?: (saved: readonly SavedArgument[]) => unknown[];
}

export { InstanceError };

type Phase = 'start' | 'entry';
type UnwindReason = 'preempt' | 'wait' | 'deficiency';

/**
 * Where a run is. Between runs the instance is `stopped` and `status` says
 * how the last run ended.
 */
type RunState =
  | { kind: 'stopped' }
  /** Waiting for a slice. */
  | { kind: 'queued' }
  /** Its code is on this thread's stack. */
  | { kind: 'executing' }
  /**
   * Blocked in a wait: holds no slice until the channel is ready or the
   * timer fires. `deadline` is the timer's on the instance's clock; `seq`
   * counts the waits, so that a host can tell the same wait from the next.
   */
  | { kind: 'parked'; wait: WaitRequest; timer: Timer | undefined; deadline: bigint | null; seq: number }
  /** Parked, with its body (memory, globals, tables, stack) released to storage: see evict(). */
  | { kind: 'hibernated'; wait: WaitRequest; timer: Timer | undefined }
  /** The wait is over (or a new run begins) and the body is being loaded back; then queued. */
  | { kind: 'waking' }
  /** Stopped; services are saving their state before the run is over. */
  | { kind: 'closing' };

type Timer = ReturnType<typeof setTimeout>;

/**
 * Where the program's body (memory, globals, tables, saved stack) is:
 * live in this realm, released to storage by a host (a hibernated or
 * stored instance) with the means to load it back, being loaded, or given
 * up for good (dispose).
 */
type Body =
  | { kind: 'live'; memory: WebAssembly.Memory }
  | { kind: 'stored'; load: () => Promise<InstanceState> }
  | { kind: 'loading'; done: Promise<void> }
  | { kind: 'disposed' };

/** A request to stop a run, strongest last: an error beats a kill, a kill beats a suspension. */
type StopRequest = { kind: 'suspend' } | { kind: 'kill' } | { kind: 'abort'; error: Error };

const RANDOM_POOL_SIZE = 16;
const NS_PER_MS = 1_000_000n;
const PAGE = 65536;

function defaultClock(): { realtime(): bigint; monotonic(): bigint } {
  return {
    realtime: () => BigInt(Date.now()) * NS_PER_MS + BigInt(Math.floor((performance.now() % 1) * 1e6)),
    monotonic: () => BigInt(Math.floor(performance.now() * 1e6)),
  };
}

export class Instance implements TickHost {
  private readonly engine: Engine;
  private readonly compiled: CompiledModule;
  private readonly services: () => ServiceRegistry;
  private readonly context: ServiceContext;
  private readonly debugSink: ((chunk: Uint8Array) => void) | undefined;
  private readonly resolution: bigint;
  private readonly clock: { realtime(): bigint; monotonic(): bigint };
  private readonly fillRandom: (buffer: Uint8Array) => void;
  private readonly embedderImports: WebAssembly.Imports | undefined;
  private readonly invokeEntry: ((fn: (...args: unknown[]) => unknown, args: readonly unknown[]) => unknown) | undefined;
  private readonly savedArguments: ((saved: readonly SavedArgument[]) => unknown[]) | undefined;
  private readonly machinery: PortableStack;
  private readonly meter: FuelMeter;
  private entryArgs: readonly unknown[] = [];
  private returnValue: unknown;

  private body: Body;
  /** While the body is live. */
  private memory: WebAssembly.Memory | undefined;
  private instance: WebAssembly.Instance | undefined;
  /** Give the body up when the run in progress has stopped (dispose() during a run). */
  private disposeWhenStopped = false;
  private readonly onWaiting: ((waiting: boolean) => void) | undefined;
  /** A hibernated wait to go on with at the next run (InstanceOptions.continueWait). */
  private continuation: NonNullable<PendingExecution['wait']> | undefined;
  private waits = 0;

  // Program state that survives between runs.
  private entry: string | undefined;
  private phase: Phase = 'start';
  /** The stack taken down while the program is suspended inside a phase. */
  private saved: PortableSaved | undefined;
  /** Built on first use after instantiation (references belong to the instance). */
  private refs: FunctionReferences | undefined;
  private waitMemo: bigint[] | undefined; // the program was stopped inside a wait
  private channelState: ChannelState = { services: [], input: new Uint8Array(0), output: new Uint8Array(0) };
  private monotonicSaved = 0n; // instance monotonic clock at the end of the last run
  private status: Status = { state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 };
  private stuck: Status | undefined; // a stop that a resume cannot get past

  // The run in progress.
  private state: RunState = { kind: 'stopped' };
  private stop: StopRequest | undefined;
  private channel: PacketChannel | undefined;
  private unwindReason: UnwindReason | undefined;
  private waitRequest: WaitRequest | undefined;
  private waitOutcome: WaitOutcome | undefined;
  private sliceDeadline = 0;
  private stepBegan = 0;
  /** The run's random bytes (RANDOM_POOL_SIZE a run); drawn when the program first asks, as most never do. */
  private randomPool: Uint8Array | undefined;
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
    this.clock = options.clock ?? defaultClock();
    this.fillRandom = options.random ?? ((b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>));
    this.embedderImports = options.imports;
    this.invokeEntry = options.invoke;
    this.savedArguments = options.savedArguments;
    const info = this.compiled.prepared.info;
    this.machinery = new PortableStack(this.engine.stackModule, info.imports.filter((i) => i.kind === 'func').length, info.rewindTable);
    this.meter = new FuelMeter({
      fuelLimit: options.fuelLimit,
      timeLimit: options.timeLimit,
      fuelUsed: options.restore?.fuelUsed,
      timeUsed: options.restore?.timeUsed,
    });
    this.onWaiting = options.onWaiting;
    const { initial, maximum } = info.memory;
    this.abi = this.makeAbiHost();
    if (options.restore) {
      const pages = options.restore.memory.byteLength / PAGE;
      if (maximum !== null && pages > maximum) {
        throw new InstanceError(
          'ERR_MEMORY_LIMIT',
          `snapshot memory size exceeds instance memory size limit (${pages} pages > ${maximum} pages)`,
        );
      }
      this.body = this.liveBody(pages);
      try {
        this.restoreState(options.restore, options.continueWait === true);
      } catch (error) {
        this.releaseBody();
        throw error;
      }
      return;
    }
    // In embedder mode there is no default entry (no _start convention).
    this.entry = this.embedderImports ? options.function || undefined : resolveEntry(info.entries, options.function);
    if (!info.hasStart) this.phase = 'entry';
    this.body = this.liveBody(initial);
  }

  /** A zeroed memory of `pages` pages from the engine's pool. */
  private liveBody(pages: number): Body {
    const memory = this.engine.memories.take(pages, this.compiled.prepared.info.memory.maximum);
    this.memory = memory;
    this.instance = undefined;
    this.refs = undefined;
    return { kind: 'live', memory };
  }

  /** The memory goes back to the pool and the wasm instance is let go. */
  private releaseBody(): void {
    if (this.memory) this.engine.memories.give(this.memory);
    this.memory = undefined;
    this.instance = undefined;
    this.refs = undefined;
  }

  private restoreState(state: InstanceState, continueWait: boolean): void {
    this.status = { ...state.status };
    this.channelState = state.channel;
    this.monotonicSaved = state.monotonic;
    if (state.status.cause === Cause.CALL_STACK_EXHAUSTED && !this.embedderImports) this.stuck = { ...state.status };
    const pending = state.pending;
    const info = this.compiled.prepared.info;
    if (pending) {
      if (pending.entry !== undefined && !this.embedderImports && !info.entries.includes(pending.entry)) {
        throw new InstanceError('ERR_ENTRY_NOT_FOUND', `snapshot entry function ${pending.entry} is not exported`);
      }
      if (pending.phase === 'start' && !info.hasStart) {
        throw new InstanceError('ERR_SNAPSHOT_STATE', 'snapshot is in a start function the program does not have');
      }
      this.phase = pending.phase;
      this.entry = pending.entry;
      if (continueWait && pending.wait && pending.waitMemo) this.continuation = pending.wait;
      this.waitMemo = pending.waitMemo;
    } else {
      this.phase = 'entry';
    }
    this.fillBody(state);
    if (pending?.entry !== undefined && this.embedderImports) this.checkExportedFunction(pending.entry);
  }

  /** Instantiate into the live body and set memory, globals, tables, drops and the saved stack from a captured state. */
  private fillBody(state: InstanceState): void {
    // Instantiation applies the element segments; memory, globals, tables and drops come from the state.
    this.instantiate();
    // Instantiation wrote the data segments: the state replaces all of it (untouched pages stay so).
    fillMemory(this.memory!, state.memory);
    for (const [index, value] of state.globals) this.global(index).value = value;
    if (state.tables) this.restoreTables(state.tables);
    for (const d of state.dropped?.data ?? []) this.dropSegment(DROP_DATA_PREFIX, d);
    for (const d of state.dropped?.elem ?? []) this.dropSegment(DROP_ELEM_PREFIX, d);
    // The stack's references are the functions of this instance.
    const pending = state.pending;
    this.saved = pending && pending.stack.byteLength > 0 ? portableFromSnapshot(this.compiled, pending.stack, this.references()) : undefined;
  }

  /**
   * Instantiate now (otherwise the first run does): link errors and traps in
   * segment initialization are thrown here, as V8 reports them.
   */
  link(): void {
    this.needLiveBody();
    this.instantiate();
  }

  /** The instance's exports (it is instantiated if it was not yet). */
  get exports(): WebAssembly.Exports {
    this.needLiveBody();
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

  /** Function references of this instance by function index, and back (FUNCTIONS_EXPORT). */
  private references(): FunctionReferences {
    if (this.refs) return this.refs;
    const slots = this.compiled.prepared.info.rewindTable;
    const table = this.instance!.exports[FUNCTIONS_EXPORT] as WebAssembly.Table | undefined;
    const byRef = new Map<unknown, number>();
    const slotOf = new Map<number, number>();
    slots.forEach((f, slot) => {
      slotOf.set(f, slot);
      if (table) byRef.set(table.get(slot), f);
    });
    this.refs = {
      indexOf: (ref) => byRef.get(ref),
      ref: (f) => {
        const slot = slotOf.get(f);
        return slot === undefined || !table ? undefined : table.get(slot);
      },
    };
    return this.refs;
  }

  /** The defined tables' elements as function indexes (null for none). */
  private captureTables(): Map<number, (number | null)[]> {
    const refs = this.references();
    const tables = new Map<number, (number | null)[]>();
    for (const [name, value] of Object.entries(this.instance!.exports)) {
      if (!name.startsWith(TABLE_EXPORT_PREFIX)) continue;
      const table = value as WebAssembly.Table;
      const elements: (number | null)[] = [];
      for (let i = 0; i < table.length; i++) {
        const v = table.get(i);
        if (v === null) {
          elements.push(null);
          continue;
        }
        const f = refs.indexOf(v);
        if (f === undefined) throw new SnapshotError('a table holds an external reference, which a snapshot cannot carry', 'ERR_SNAPSHOT_UNSUPPORTED');
        elements.push(f);
      }
      tables.set(Number(name.slice(TABLE_EXPORT_PREFIX.length)), elements);
    }
    return tables;
  }

  private restoreTables(tables: ReadonlyMap<number, readonly (number | null)[]>): void {
    const refs = this.references();
    for (const [index, elements] of tables) {
      const table = this.instance!.exports[TABLE_EXPORT_PREFIX + index];
      if (!(table instanceof WebAssembly.Table)) throw new InstanceError('ERR_SNAPSHOT_STATE', `snapshot holds table ${index}, which the program does not define`);
      if (elements.length < table.length) throw new InstanceError('ERR_SNAPSHOT_STATE', `snapshot table ${index} is smaller than the program's`);
      if (elements.length > table.length) table.grow(elements.length - table.length);
      elements.forEach((f, i) => {
        const ref = f === null ? null : refs.ref(f);
        if (ref === undefined) throw new InstanceError('ERR_SNAPSHOT_STATE', `snapshot table ${index} holds function ${f}, which no table can hold`);
        table.set(i, ref);
      });
    }
  }

  private dropSegment(prefix: string, segment: number): void {
    const drop = this.instance!.exports[prefix + segment];
    if (typeof drop !== 'function') throw new InstanceError('ERR_SNAPSHOT_STATE', `snapshot dropped segment ${segment}, which the program never drops`);
    (drop as () => void)();
  }

  /** Passive segments the program has dropped (their flags are set). */
  private capturedDrops(): DroppedSegments | undefined {
    const dropped: DroppedSegments = { data: [], elem: [] };
    for (const [name, value] of Object.entries(this.instance!.exports)) {
      const list = name.startsWith(DROPPED_DATA_PREFIX) ? dropped.data : name.startsWith(DROPPED_ELEM_PREFIX) ? dropped.elem : undefined;
      if (list && (value as WebAssembly.Global).value === 1) list.push(Number(name.slice(name.lastIndexOf('.') + 1)));
    }
    return dropped.data.length > 0 || dropped.elem.length > 0 ? dropped : undefined;
  }

  private global(index: number): WebAssembly.Global {
    const g = this.instance!.exports[GLOBAL_EXPORT_PREFIX + index];
    if (!(g instanceof WebAssembly.Global)) throw new InstanceError('ERR_SNAPSHOT_STATE', `global ${index} is not mutable`);
    return g;
  }

  private get running(): boolean {
    return this.state.kind !== 'stopped';
  }

  /** Whether a slice is running (TickHost). */
  get executing(): boolean {
    return this.state.kind === 'executing';
  }

  /**
   * Everything needed to continue this instance elsewhere. Only between
   * runs, and with the body live (see materialize()).
   */
  capture(): InstanceState {
    if (this.running) throw new InstanceError('ERR_INSTANCE_RUNNING', 'instance is running');
    this.needLiveBody();
    const state = this.captureBody(this.status, this.channelState, this.monotonicSaved);
    if (this.status.state === State.SUSPENDED) {
      state.pending = { phase: this.phase, entry: this.entry, stack: this.savedStack() };
      if (this.waitMemo) state.pending.waitMemo = this.waitMemo;
    }
    return state;
  }

  private needLiveBody(): void {
    if (this.body.kind === 'disposed') throw new InstanceError('ERR_INSTANCE_DISPOSED', 'instance was disposed');
    if (this.body.kind !== 'live') throw new InstanceError('ERR_INSTANCE_STORED', 'instance body is in storage: materialize() it first');
  }

  /** `view`: the memory as it is (not a copy): for a capture used before the program can run again. */
  private captureBody(status: Status, channel: ChannelState, monotonic: bigint, view = false): InstanceState {
    // An instance that never ran is instantiated now, for its initial memory and globals.
    this.instantiate();
    const globals = new Map<number, GlobalValue>();
    for (const index of this.compiled.prepared.info.mutableGlobals) globals.set(index, this.global(index).value as GlobalValue);
    const state: InstanceState = {
      status: { ...status },
      memory: view ? new Uint8Array(this.memory!.buffer) : new Uint8Array(this.memory!.buffer).slice(),
      globals,
      channel,
      monotonic,
      fuelUsed: this.meter.fuelUsed,
      timeUsed: this.meter.timeUsed,
    };
    if (this.compiled.prepared.info.dynamicTables) state.tables = this.captureTables();
    const dropped = this.capturedDrops();
    if (dropped) state.dropped = dropped;
    return state;
  }

  private savedStack(): Uint8Array {
    return this.saved === undefined ? new Uint8Array(0) : portableForSnapshot(this.compiled, this.saved, this.phase, this.entry, this.references());
  }

  /**
   * While the run waits (parked): its state as a snapshot of a program
   * suspended in its wait, which also says what it waits for
   * (PendingExecution.wait), so that a restore with `continueWait` goes on
   * waiting. The services' states are taken without ending them
   * (ServiceInstance.hibernate). `idle`: no service has anything under way
   * (the instance may be dropped from memory altogether); `wait` identifies
   * this wait for evict(). Null when the run is not waiting, or a service
   * cannot be saved while it runs. Its memory is the instance's own (a
   * view, not a copy): valid until the run goes on.
   */
  captureWaiting(): { state: InstanceState; idle: boolean; wait: number; wakeAfter: bigint | null } | null {
    const s = this.state;
    if (s.kind !== 'parked' || this.body.kind !== 'live' || !this.channel) return null;
    const channel = this.channel.hibernate();
    if (!channel) return null;
    const now = this.monotonicNow();
    // Memory as a view, not a copy: if the run goes on before the state is written, evict() refuses it and it is thrown away.
    const state = this.captureBody({ state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 }, channel.state, now, true);
    const remaining = s.deadline === null ? null : s.deadline > now ? s.deadline - now : 0n;
    const memo = s.wait.memo ?? [];
    state.pending = {
      phase: this.phase,
      entry: this.entry,
      stack: this.savedStack(),
      waitMemo: memo,
      wait: { readable: s.wait.readable, writable: s.wait.writable, timeout: remaining, realtime: this.clock.realtime() },
    };
    return { state, idle: channel.idle, wait: s.seq, wakeAfter: remaining };
  }

  /**
   * Release the body of a run that waits, as captured by captureWaiting()
   * for the same wait (`wait`): its memory goes back to the pool and its
   * wasm objects are let go. When the wait ends (or anything needs the
   * body) `load` gives the captured state back. False when the run no
   * longer waits there.
   */
  evict(wait: number, load: () => Promise<InstanceState>): boolean {
    const s = this.state;
    if (s.kind !== 'parked' || s.seq !== wait || this.body.kind !== 'live') return false;
    this.releaseBody();
    this.saved = undefined; // in the stored state
    this.body = { kind: 'stored', load };
    this.state = { kind: 'hibernated', wait: s.wait, timer: s.timer };
    return true;
  }

  /** Whether the body is live (not released to storage, not disposed). */
  get materialized(): boolean {
    return this.body.kind === 'live';
  }

  /**
   * Load a stored body back (it is live when this resolves). Waits for a
   * memory when the engine's pool is full.
   */
  async materialize(): Promise<void> {
    for (;;) {
      const b = this.body;
      if (b.kind === 'live') return;
      if (b.kind === 'disposed') throw new InstanceError('ERR_INSTANCE_DISPOSED', 'instance was disposed');
      if (b.kind === 'loading') {
        await b.done;
        continue;
      }
      const done = this.load(b.load);
      this.body = { kind: 'loading', done };
      try {
        await done;
      } catch (error) {
        if (this.body.kind === 'loading') this.body = b; // stays stored: another try may work
        throw error;
      }
    }
  }

  private async load(from: () => Promise<InstanceState>): Promise<void> {
    const state = await from();
    const pool = this.engine.memories;
    for (;;) {
      if (!pool.hasRoom) await pool.room();
      if (this.body.kind !== 'loading') return; // disposed meanwhile
      try {
        this.body = this.liveBody(state.memory.byteLength / PAGE);
        break;
      } catch (error) {
        if (!(error instanceof MemoryPoolFull)) throw error;
      }
    }
    try {
      this.fillBody(state);
    } catch (error) {
      this.releaseBody();
      this.body = { kind: 'stored', load: from };
      throw error;
    }
  }

  /**
   * Give the body up for good (its memory goes back to the pool). A run in
   * progress is killed first, and the body goes when it has stopped.
   */
  dispose(): void {
    if (this.body.kind === 'disposed') return;
    if (this.running) {
      this.disposeWhenStopped = true;
      this.kill();
      return;
    }
    this.releaseBody();
    this.body = { kind: 'disposed' };
  }

  /** The status of the last run (RUNNING while one is in progress). */
  get currentStatus(): Status {
    return this.running ? { state: State.RUNNING, cause: Cause.NORMAL, result: 0 } : this.status;
  }

  /** Fuel the program has used in all its runs. */
  get fuelConsumed(): number {
    return this.meter.consumed;
  }

  /**
   * Start the first run, or resume a suspended or halted instance. Resolves when the run stops.
   * `args` (embedder mode) are the entry function's arguments; when a suspended call is
   * resumed the saved ones are used.
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
    this.request({ kind: 'suspend' });
  }

  /**
   * Suspend at the first fuel check after the program has used this much fuel
   * in all (deterministic suspension points, for tests and debugging).
   */
  suspendAfterFuel(fuel: number): void {
    this.meter.suspendAt = fuel;
  }

  /** Kill the instance: final state KILLED. */
  kill(): void {
    if (!this.running) {
      if (this.status.state === State.SUSPENDED || this.status.state === State.HALTED) {
        this.status = { state: State.KILLED, cause: Cause.NORMAL, result: 0 };
      }
      return;
    }
    this.request({ kind: 'kill' });
  }

  /** Origin and other services need the run's channel only through services; exposed for the host's bookkeeping. */
  get bytesForProgram(): number {
    return this.channel?.pending ?? 0;
  }

  private request(r: StopRequest): void {
    const rank = { suspend: 0, kill: 1, abort: 2 };
    if (!this.stop || rank[r.kind] > rank[this.stop.kind]) this.stop = r;
    if (!this.executing) this.stopIdle();
  }

  private beginRun(): void {
    this.state = { kind: 'queued' };
    this.stop = undefined;
    const going = this.continuation;
    this.continuation = undefined;
    this.randomPool = undefined;
    this.debugLast = -1;
    if (going) {
      // A hibernated wait goes on: the clock ran meanwhile, and nothing tells the program it stopped.
      const elapsed = this.clock.realtime() - going.realtime;
      this.monotonicBase = this.clock.monotonic() - (elapsed > 0n ? elapsed : 0n);
      this.resumedFlag = false;
    } else {
      this.monotonicBase = this.clock.monotonic() - 1_000_000_000n;
      this.resumedFlag = true;
      if (this.waitMemo) {
        // Resumed inside a wait: the wait ends as interrupted (nothing ready).
        this.waitOutcome = { readable: false, writable: false, memo: this.waitMemo };
      }
    }
    const memo = this.waitMemo;
    this.waitMemo = undefined;
    this.channel = new PacketChannel(this.services(), this.context, {
      readable: () => this.wake(),
      abort: (error) => this.abort(error),
    });
    try {
      this.channel.restore(this.channelState, { announce: !going });
    } catch (error) {
      this.finish(this.errorStatus(error));
      return;
    }
    if (this.stuck) {
      this.finish(this.stuck);
      return;
    }
    if (this.body.kind !== 'live') {
      // The body is in storage: load it, then continue as below.
      this.state = { kind: 'waking' };
      this.materialize().then(
        () => {
          if (this.state.kind !== 'waking') return; // stopped meanwhile
          this.state = { kind: 'queued' };
          this.proceed(going, memo);
        },
        (error: unknown) => {
          if (this.state.kind !== 'waking') return;
          this.state = { kind: 'queued' };
          this.finish(this.errorStatus(error));
        },
      );
      return;
    }
    this.proceed(going, memo);
  }

  /** The run's first step, the body live: initialize only, wait on (a hibernated wait), or queue for a slice. */
  private proceed(going: PendingExecution['wait'], memo: bigint[] | undefined): void {
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
    if (going) {
      // Blocked where it was, the timer shortened by the time that passed.
      const elapsed = this.clock.realtime() - going.realtime;
      const left = going.timeout === null ? null : going.timeout > elapsed ? going.timeout - elapsed : 0n;
      this.waitRequest = { readable: going.readable, writable: going.writable, timeout: left, memo: memo ?? [] };
      this.park();
      return;
    }
    this.engine.enqueue(this);
  }

  /** Engine entry point: run one slice. */
  step(deadline: number): void {
    if (this.state.kind !== 'queued') return;
    if (this.stop) {
      this.stopIdle();
      return;
    }
    this.sliceDeadline = deadline;
    this.stepBegan = this.engine.now();
    this.state = { kind: 'executing' };
    let thrown: unknown;
    let threw = false;
    try {
      this.instantiate();
      this.callPhase();
    } catch (error) {
      threw = true;
      thrown = error;
    }
    this.state = { kind: 'queued' };
    this.meter.timeUsed += this.engine.now() - this.stepBegan;
    this.meter.absorb();
    let saved: PortableSaved | undefined;
    if (threw && thrown instanceof WebAssembly.Exception) saved = this.machinery.unwound(thrown);
    if (saved !== undefined) {
      this.saved = saved;
      const reason = this.unwindReason;
      this.unwindReason = undefined;
      if (reason === 'deficiency') this.finish({ state: State.SUSPENDED, cause: Cause.ABI_DEFICIENCY, result: 0 });
      else if (this.stop) this.stopIdle();
      else if (reason === 'wait') this.park();
      else this.engine.enqueue(this);
      return;
    }
    if (threw) {
      const status = this.errorStatus(thrown);
      this.machinery.reset();
      this.finish(status);
      if (this.embedderImports && this.phase === 'entry' && status.cause !== Cause.NORMAL && status.cause !== Cause.INTERNAL) {
        // Embedder mode: the trap ended the call; the instance stays callable.
        this.status = { state: State.HALTED, cause: Cause.NORMAL, result: 0 };
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
    const info = this.compiled.prepared.info;
    const engineImports: Record<string, WebAssembly.ImportValue> = {
      ...this.machinery.imports(this),
      [MEMORY_IMPORT]: this.memory!,
    };
    let imports: Record<string, Record<string, WebAssembly.ImportValue>>;
    if (this.embedderImports) {
      imports = { ...(this.embedderImports as Record<string, Record<string, WebAssembly.ImportValue>>) };
    } else {
      imports = createImports(this.abi, info.imports) as Record<string, Record<string, WebAssembly.ImportValue>>;
      // Imports that may take the stack down are called again on the way back up.
      let index = 0;
      for (const imp of info.imports) {
        if (imp.kind !== 'func') continue;
        if (isBlockingImport(imp.module, imp.field)) {
          const fn = imports[imp.module][imp.field] as (...args: unknown[]) => unknown;
          imports[imp.module] = { ...imports[imp.module], [imp.field]: this.machinery.wrap(index, imp.params ?? [], fn) };
        }
        index++;
      }
    }
    imports[ENGINE_MODULE] = engineImports;
    this.instance = new WebAssembly.Instance(this.compiled.module, imports);
    this.machinery.bind(this.instance.exports);
    this.meter.bind(this.instance.exports[FUEL_EXPORT] as WebAssembly.Global | undefined);
  }

  private callPhase(): void {
    const name = this.phase === 'start' ? START_EXPORT : this.entry!;
    const fn = this.instance!.exports[name] as (...args: unknown[]) => unknown;
    let args = this.phase === 'start' ? [] : this.entryArgs;
    const saved = this.saved;
    if (saved !== undefined) {
      this.saved = undefined;
      const types = this.phase === 'start' || !this.embedderImports ? [] : entryParamTypes(this.compiled, name);
      const savedArgs = this.machinery.rewind(saved, types);
      if (savedArgs && savedArgs.length > 0) args = this.savedArguments ? this.savedArguments(savedArgs) : savedArgs.map(argumentValue);
      this.meter.suspendCounting(-1);
    } else {
      const cost = this.compiled.prepared.info.costs[name];
      if (cost) this.meter.charge(cost);
      this.meter.grant();
    }
    if (this.phase === 'start') fn();
    else if (this.invokeEntry) this.returnValue = this.invokeEntry(fn, args);
    else this.returnValue = fn(...args);
  }

  /** TickHost: fuel ran out. Decide whether the program goes on. */
  onTick(): number | 'unwind' {
    const meter = this.meter;
    meter.absorb();
    if (this.stop?.kind === 'abort') throw this.stop.error;
    const now = this.engine.now();
    if (meter.checkLimits(now - this.stepBegan)) this.request({ kind: 'suspend' });
    if (now >= this.sliceDeadline || this.stop) {
      this.unwindReason = 'preempt';
      return 'unwind';
    }
    return meter.grant();
  }

  /** TickHost: the stack is back up. */
  onRewound(): number {
    return this.meter.grant();
  }

  /** Waiting for I/O or a timer: hold no slice until something happens. */
  private park(): void {
    const wait = this.waitRequest!;
    const deadline = wait.timeout === null ? null : this.monotonicNow() + wait.timeout;
    const parked: RunState = { kind: 'parked', wait, timer: undefined, deadline, seq: ++this.waits };
    this.state = parked;
    if (this.isReady(wait)) {
      this.wake();
      return;
    }
    if (wait.timeout !== null) {
      const ms = Number(wait.timeout / NS_PER_MS);
      parked.timer = setTimeout(() => this.wake(true), Math.max(0, ms));
    }
    this.onWaiting?.(true);
  }

  private isReady(req: WaitRequest): boolean {
    return (req.readable && this.channel!.readable()) || (req.writable && this.channel!.writable());
  }

  /** Readiness may have changed (or the wait timed out): resume a parked program. */
  private wake(timedOut = false): void {
    const s = this.state;
    if (s.kind !== 'parked' && s.kind !== 'hibernated') return;
    const req = s.wait;
    if (!timedOut && !this.isReady(req)) return;
    if (s.timer !== undefined) clearTimeout(s.timer);
    this.waitOutcome = {
      readable: req.readable && this.channel!.readable(),
      writable: req.writable && this.channel!.writable(),
      memo: req.memo ?? [],
    };
    this.waitRequest = undefined;
    this.onWaiting?.(false);
    if (s.kind === 'hibernated') {
      this.state = { kind: 'waking' };
      this.materialize().then(
        () => {
          if (this.state.kind !== 'waking') return; // stopped meanwhile
          this.state = { kind: 'queued' };
          this.engine.enqueue(this);
        },
        (error: unknown) => this.abortWaking(error),
      );
      return;
    }
    this.state = { kind: 'queued' };
    this.engine.enqueue(this);
  }

  /** The body could not be loaded back: the run ends with the error (its state is where the host stored it). */
  private abortWaking(error: unknown): void {
    if (this.state.kind !== 'waking') return;
    this.state = { kind: 'queued' };
    this.finish(this.errorStatus(error));
  }

  private abort(error: Error): void {
    if (!this.running) return;
    this.request({ kind: 'abort', error });
  }

  /** Stop a run that is not executing wasm right now: its stack (if any) is already saved. */
  private stopIdle(): void {
    const s = this.state;
    if (s.kind === 'stopped' || s.kind === 'executing' || s.kind === 'closing') return;
    this.engine.dequeue(this);
    if (s.kind === 'parked' || s.kind === 'hibernated') {
      // Interrupted inside a wait: the wait ends with nothing ready at resume.
      this.waitMemo = s.wait.memo ?? [];
      this.waitRequest = undefined;
      if (s.timer !== undefined) clearTimeout(s.timer);
      this.onWaiting?.(false);
    }
    const stop = this.stop;
    if (stop?.kind === 'abort') this.finish(this.errorStatus(stop.error));
    else if (stop?.kind === 'kill') this.finish({ state: State.KILLED, cause: Cause.NORMAL, result: 0 });
    else this.finish({ state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 });
  }

  private errorStatus(error: unknown): Status {
    if (error instanceof Exit) return { state: State.TERMINATED, cause: Cause.NORMAL, result: error.result };
    if (error instanceof AbiViolation) {
      return { state: State.KILLED, cause: Cause.ABI_VIOLATION, result: 0, error: error.message };
    }
    if (error instanceof LimitExceeded) {
      return { state: State.KILLED, cause: Cause.NORMAL, result: 0, error: error.message, limit: error.limit };
    }
    let cause: Cause | undefined;
    if (error instanceof Trap) cause = error.trapCause;
    else cause = trapCause(error);
    if (this.machinery.overflowed(error)) {
      // The saved stack overflowed while being taken down.
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
    const s = this.state;
    if (s.kind === 'stopped' || s.kind === 'closing') return;
    this.unwindReason = undefined;
    if (status.state !== State.SUSPENDED) {
      this.saved = undefined;
      this.waitMemo = undefined;
    }
    this.waitOutcome = undefined;
    this.monotonicSaved = this.monotonicNow();
    if (this.debugLast >= 0 && this.debugLast !== 0x0a) this.debugSink?.(Uint8Array.of(0x0a));
    const ok = status.state === State.SUSPENDED || status.state === State.HALTED;
    this.state = { kind: 'closing' };
    const waiting = this.channel?.prepareShutdown(ok);
    if (!waiting) {
      this.complete(status);
      return;
    }
    // Some service saves its state elsewhere: the run is over only when it has.
    void waiting.then(() => this.complete(status));
  }

  private complete(status: Status): void {
    this.state = { kind: 'stopped' };
    this.stop = undefined;
    if (this.channel) this.channelState = this.channel.close();
    this.channel = undefined;
    this.status = status;
    if (this.disposeWhenStopped) {
      this.disposeWhenStopped = false;
      this.dispose();
    }
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
      bytes: () => new Uint8Array(this.memory!.buffer),
      view: () => new DataView(this.memory!.buffer),
      timeResolution: this.resolution,
      realtime: () => this.clock.realtime(),
      monotonic: () => this.monotonicNow(),
      random: (n: number): Uint8Array => {
        if (!this.randomPool) {
          this.randomPool = new Uint8Array(RANDOM_POOL_SIZE);
          this.fillRandom(this.randomPool);
        }
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
        this.unwindReason = 'deficiency';
        this.machinery.unwindFromImport();
      },
      exit: (status: number): never => {
        throw new Exit(status);
      },
      trap: (cause: Cause): never => {
        throw new Trap(cause);
      },
    };
  }

  /** AbiHost.wait: answer at once when possible, else take the stack down and park (see AbiHost). */
  private waitFor(request: WaitRequest): WaitOutcome | null {
    if (this.waitOutcome) {
      const outcome = this.waitOutcome;
      this.waitOutcome = undefined;
      return outcome;
    }
    if (this.stop?.kind === 'abort') throw this.stop.error;
    if (request.timeout === 0n || this.isReady(request)) {
      return {
        readable: request.readable && this.channel!.readable(),
        writable: request.writable && this.channel!.writable(),
        memo: request.memo ?? [],
      };
    }
    this.waitRequest = request;
    this.unwindReason = 'wait';
    this.machinery.unwindFromImport();
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
