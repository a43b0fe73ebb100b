// Where instances execute. The server talks to instances only through the
// Executor interface, so execution can happen in this thread (InProcess) or
// in a pool of worker processes (worker-executor.ts) without the handlers noticing.

import { nodeEngine } from '../../host/engine.ts';
import { ModuleCache } from '../../host/module-cache.ts';
import { ProgramInstance } from '../../host/program-instance.ts';
import { isSnapshot, restoreInstance, snapshotInstance } from '../../host/snapshot.ts';
import type { Engine } from '../../runtime/instance/engine.ts';
import { instanceMemoryBytes } from '../../runtime/prepare/prepared.ts';
import { State, type Status } from '../../runtime/instance/status.ts';
import type { ServiceContext } from '../../runtime/service/service.ts';
import { readSnapshot } from '../../runtime/snapshot/read.ts';
import { Registry } from '../../services/index.ts';

/** What kind of failure an executor reports; the handlers map kinds to HTTP statuses (busy: a limit of the server, 503). */
export type ExecErrorKind = 'module' | 'entry' | 'state' | 'busy' | 'internal';

export class ExecError extends Error {
  readonly kind: ExecErrorKind;
  constructor(kind: ExecErrorKind, message: string) {
    super(message);
    this.name = 'ExecError';
    this.kind = kind;
  }
}

/** Turn a runtime error into an ExecError with the right kind. */
export function classify(error: unknown): ExecError {
  if (error instanceof ExecError) return error;
  const e = error as { name?: string; code?: string; message?: string };
  const message = e?.message ?? String(error);
  if (e?.name === 'PrepareError' || e?.name === 'SnapshotError' || e?.name === 'ModuleFormatError' ||
    e?.name === 'UnsupportedFeatureError' || e?.name === 'AbiImportError' || e?.name === 'CompileError' || e?.name === 'LinkError') {
    return new ExecError('module', message);
  }
  if (e?.name === 'InstanceError' || e?.code?.startsWith?.('ERR_')) {
    if (e.code?.startsWith('ERR_ENTRY')) return new ExecError('entry', message);
    if (e.code === 'ERR_MEMORY_LIMIT' || e.code?.startsWith('ERR_SNAPSHOT')) return new ExecError('module', message);
    return new ExecError('state', message);
  }
  return new ExecError('internal', message);
}

/**
 * How an instance ended when its worker was lost: a bystander (another
 * instance held the worker, or it crashed), whose state survives in its last
 * checkpoint, or the offender that held the worker.
 */
export type LostAs = 'bystander' | 'offender';

export interface ProgramFacts {
  /** The module is a snapshot. */
  snapshot: boolean;
  /** Exported entry functions. */
  entries: string[];
}

export interface CreateOptions {
  /** Module bytes: a plain program or a snapshot module. */
  bytes: Uint8Array;
  hash: string;
  /** Who asks (principal id, or anonymous with its source): preparation is shared fairly between owners. */
  owner?: string;
  function?: string;
  context: ServiceContext;
  maxMemoryPages: number;
  /** Milliseconds of run time over all runs. */
  timeLimit?: number;
  /** Nanoseconds. */
  timeResolution?: number;
  /** Debug log sink (the program's gate_debug output); absent: the log is disabled. */
  debug?: (chunk: Uint8Array) => void;
  /** Called at once when the executor loses the instance with its worker (lostAs is set by then), before its run and connections end. */
  onLost?: () => void;
}

/** Linear memory and globals of a stopped instance (for the debug action). */
export interface Inspection {
  memory: Uint8Array;
  /** Mutable globals by index: i32/f32/f64 as numbers, i64 as bigint. */
  globals: [number, number | bigint][];
}

export interface ExecInstance {
  /** Current status (RUNNING while a run is in progress). */
  readonly status: Status;
  /** Memory the instance may hold, in bytes: its linear memory at its maximum, plus its tables. */
  readonly memoryLimit: number;
  /** Set when the executor lost the instance with its worker (see LostAs). */
  readonly lostAs?: LostAs;
  /** Start or resume; resolves with the status when the run stops. */
  run(fn?: string): Promise<Status>;
  /** Join a client to the program's next accepted origin stream (see ProgramInstance.connect). */
  connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: () => void,
  ): Promise<boolean>;
  suspend(): void;
  kill(): void;
  /** A snapshot module of the stopped instance. */
  snapshot(): Promise<Uint8Array>;
  inspect(): Promise<Inspection>;
  /** Forget the instance (it must be stopped). */
  release(): void;
}

export interface Executor {
  /** Validate and prepare a module (compilation is cached by hash); owner as in CreateOptions. */
  prepare(bytes: Uint8Array, hash: string, maxMemoryPages: number, owner?: string): Promise<ProgramFacts>;
  create(options: CreateOptions): Promise<ExecInstance>;
  /** Per-worker health, for metrics and the watchdog. */
  workers(): { id: number; instances: number; stuck: boolean }[];
  close(): Promise<void>;
}

export interface InProcessOptions {
  cacheDir: string | null;
  registry?: Registry;
  engine?: Engine;
  /** A module cache of the caller's instead of one over cacheDir. */
  cache?: ModuleCache;
  /** V8 heap the instances' tables may take together, and the setting named when it is full (default: no bound). */
  tableBudget?: { bytes: number; key: string };
}

/** Instances on this thread's engine. */
export class InProcessExecutor implements Executor {
  protected readonly cache: ModuleCache;
  private readonly engine: Engine;
  private readonly registry: Registry;
  private readonly tableBudget: { bytes: number; key: string } | undefined;
  private live = 0;
  private tables = 0;

  constructor(options: InProcessOptions) {
    this.cache = options.cache ?? new ModuleCache(options.cacheDir);
    this.engine = options.engine ?? nodeEngine();
    this.registry = options.registry ?? new Registry();
    this.tableBudget = options.tableBudget;
  }

  async prepare(bytes: Uint8Array, _hash: string, maxMemoryPages: number): Promise<ProgramFacts> {
    try {
      if (isSnapshot(bytes)) {
        const s = await readSnapshot(bytes);
        const compiled = await this.cache.get(s.program, { maxMemoryPages });
        return { snapshot: true, entries: compiled.prepared.info.entries };
      }
      const compiled = await this.cache.get(bytes, { maxMemoryPages });
      return { snapshot: false, entries: compiled.prepared.info.entries };
    } catch (error) {
      throw classify(error);
    }
  }

  async create(options: CreateOptions): Promise<ExecInstance> {
    const common = {
      engine: this.engine,
      registry: this.registry,
      context: options.context,
      function: options.function,
      timeLimit: options.timeLimit,
      timeResolution: options.timeResolution,
      debug: options.debug,
    };
    let program: ProgramInstance;
    try {
      if (isSnapshot(options.bytes)) {
        program = await restoreInstance(options.bytes, { ...common, cache: this.cache, maxMemoryPages: options.maxMemoryPages });
      } else {
        const compiled = await this.cache.get(options.bytes, { maxMemoryPages: options.maxMemoryPages }, options.hash);
        program = new ProgramInstance({ ...common, compiled });
      }
    } catch (error) {
      throw classify(error);
    }
    const info = program.compiled.prepared.info;
    if (this.tableBudget && this.tables + info.tableBytes > this.tableBudget.bytes) {
      program.kill();
      throw new ExecError('busy', `no worker has heap left for the instance's tables (${this.tableBudget.key})`);
    }
    this.live++;
    this.tables += info.tableBytes;
    return new LocalInstance(program, instanceMemoryBytes(info, options.maxMemoryPages), () => {
      this.live--;
      this.tables -= info.tableBytes;
    });
  }

  workers(): { id: number; instances: number; stuck: boolean }[] {
    return [{ id: 0, instances: this.live, stuck: false }];
  }

  async close(): Promise<void> {}
}

export class LocalInstance implements ExecInstance {
  readonly program: ProgramInstance;
  private readonly releaseHooks: (() => void)[];
  private released = false;
  readonly memoryLimit: number;

  constructor(program: ProgramInstance, memoryLimit: number, onRelease: () => void) {
    this.program = program;
    this.memoryLimit = memoryLimit;
    this.releaseHooks = [onRelease];
  }

  get status(): Status {
    return this.program.status;
  }

  run(fn?: string): Promise<Status> {
    try {
      return this.program.run(fn ? { function: fn } : {});
    } catch (error) {
      return Promise.reject(classify(error));
    }
  }

  connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: () => void,
  ): Promise<boolean> {
    return this.program.connect(input, output, signal, onJoin && (() => onJoin()));
  }

  suspend(): void {
    this.program.suspend();
  }

  kill(): void {
    this.program.kill();
  }

  async snapshot(): Promise<Uint8Array> {
    if (this.program.status.state === State.RUNNING) throw new ExecError('state', 'instance must not be running');
    try {
      return await snapshotInstance(this.program);
    } catch (error) {
      throw classify(error);
    }
  }

  async inspect(): Promise<Inspection> {
    if (this.program.status.state === State.RUNNING) throw new ExecError('state', 'instance must be stopped');
    const state = this.program.instance.capture();
    return { memory: state.memory, globals: [...state.globals.entries()].sort((a, b) => a[0] - b[0]) };
  }

  /** Call `hook` when the instance is released. */
  onRelease(hook: () => void): void {
    this.releaseHooks.push(hook);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.program.kill();
    for (const hook of this.releaseHooks) hook();
  }
}
