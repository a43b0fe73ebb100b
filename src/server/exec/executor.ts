// Where instances execute. The server talks to instances only through the
// Executor interface, so execution can happen in this thread (InProcess) or
// in a pool of worker processes (worker-executor.ts) without the handlers noticing.

import path from 'node:path';
import type { HostedProgram } from '../../host/hosted-program.ts';
import { defaultCacheDir, ModuleCache } from '../../host/module-cache.ts';
import { isSnapshot } from '../../host/snapshot.ts';
import { DEFAULT_MEMORIES, type Engine, type EngineOptions, type Runnable } from '../../runtime/instance/engine.ts';
import type { CompiledModule } from '../../runtime/instance/instance.ts';
import { instanceMemoryBytes } from '../../runtime/prepare/prepared.ts';
import { State, type Status } from '../../runtime/instance/status.ts';
import type { ServiceContext } from '../../runtime/service/service.ts';
import { readSnapshot } from '../../runtime/snapshot/read.ts';
import { Registry } from '../../services/index.ts';
import type { Config } from '../config/config.ts';
import { Hosting } from './hosting.ts';

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

/** No memory for another live instance, even after hibernating those that wait: a full server (503). */
export function poolFull(key: string | undefined): ExecError {
  return new ExecError('busy', `no room for another live instance: every memory is in use (${key ?? 'live instances per process'})`);
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
  if (e?.code === 'ERR_MEMORY_POOL') return poolFull(undefined);
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
  /**
   * It may hibernate when its run waits long (a persistent instance): each
   * hibernation writes its state as a snapshot module file of the data
   * directory (see onHibernated), which is its newest checkpoint.
   */
  hibernate?: boolean;
  /** It hibernated: the module file `checkpoint` (written already) holds it. */
  onHibernated?: (h: HibernationReport) => void;
  /** It is in memory again after hibernating. */
  onWoken?: () => void;
  /**
   * Instead of a new instance, one whose run hibernated and was dropped
   * (a restart): `bytes` is then its module, `checkpoint` its hibernation
   * snapshot. It stays in storage until something needs it.
   */
  dormant?: { checkpoint: string; wakeAt: number | null };
}

export interface HibernationReport {
  /** Module hash of the snapshot. */
  checkpoint: string;
  size: number;
  /** Nothing was under way: the instance was dropped from memory altogether. */
  idle: boolean;
  /** When its timer ends its wait (Date.now() milliseconds), if it has one. */
  wakeAt: number | null;
  /** Its run waits in the snapshot; false: it is stopped, and the snapshot is an ordinary checkpoint (it left memory). */
  waiting: boolean;
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
  /** Hibernated: its run waits in storage, not in memory. */
  readonly hibernating?: boolean;
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
  /**
   * The server is closing: hibernated instances are woken no more and stay
   * as their last hibernation checkpoints hold them. Resolves with their
   * ids (ServiceContext.instance).
   */
  freeze?(): Promise<Set<string>>;
  close(): Promise<void>;
}

/**
 * Where and when instances hibernate (runtime.hibernate): their snapshots
 * are module files of the data directory. Servers of a cluster
 * (database.url) do not hibernate: the files would be one server's.
 */
export function hibernationOf(config: Config, dataDir: string): { moduleDir: string; idleMs: number } | undefined {
  if (config.database.url) return undefined;
  return { moduleDir: path.join(dataDir, 'module'), idleMs: config.runtime.hibernate * 1000 };
}

/** The in-process executor gate-server and gate-daemon run with when runtime.workers = 0. */
export function inProcessOptions(config: Config, dataDir: string, registry?: Registry): InProcessOptions {
  const r = config.runtime;
  return {
    cacheDir: r.cachedir || defaultCacheDir(),
    registry,
    maxInstances: { value: r.maxinstances, key: `runtime.maxinstances = ${r.maxinstances}` },
    hibernation: hibernationOf(config, dataDir),
  };
}

export interface InProcessOptions {
  cacheDir: string | null;
  registry?: Registry;
  /** A module cache of the caller's instead of one over cacheDir. */
  cache?: ModuleCache;
  /** Told what the engine begins: a slice of an instance, or idling (a shard reports it to its watchdog). */
  onSlice?: EngineOptions['onSlice'];
  /** V8 heap the instances' tables may take together, and the setting named when it is full (default: no bound). */
  tableBudget?: { bytes: number; key: string };
  /** Live instances at most (default DEFAULT_MEMORIES), and the key to name when full. */
  maxInstances?: { value: number; key: string };
  /** Hibernate persistent instances that wait this long (0: only when memory is short); snapshots go to moduleDir. */
  hibernation?: { moduleDir: string; idleMs: number };
  /** Milliseconds a new instance waits for a memory before it is refused (default 5000). */
  memoryWait?: number;
}

/** What a caller of InProcessExecutor.create learns of the instance it creates (a shard names its slices). */
export interface HostingHooks {
  /** The instance's runnable is in memory (created, or restored after it was dropped). */
  resident(runnable: Runnable): void;
  /** Wraps work on the instance outside its slices. */
  working<T>(work: () => Promise<T>): Promise<T>;
}

/** Instances on this thread's engine. */
export class InProcessExecutor implements Executor {
  protected readonly cache: ModuleCache;
  private readonly hosting: Hosting;
  private readonly registry: Registry;
  private readonly live = new Set<LocalInstance>();
  private readonly tableBudget: { bytes: number; key: string } | undefined;
  private tables = 0;

  constructor(options: InProcessOptions) {
    this.cache = options.cache ?? new ModuleCache(options.cacheDir);
    this.registry = options.registry ?? new Registry();
    this.tableBudget = options.tableBudget;
    const max = options.maxInstances ?? { value: DEFAULT_MEMORIES, key: 'live instances per process' };
    this.hosting = new Hosting({ memories: max.value, memoriesKey: max.key, hibernation: options.hibernation, memoryWait: options.memoryWait, onSlice: options.onSlice });
  }

  /** The engine the instances run on. */
  get engine(): Engine {
    return this.hosting.engine;
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

  async create(options: CreateOptions, hooks?: HostingHooks): Promise<ExecInstance> {
    let hosted: HostedProgram;
    let compiled: CompiledModule | undefined;
    const snapshot = isSnapshot(options.bytes) && !options.dormant;
    try {
      if (!snapshot) {
        // A dormant one restores with its module's preparation (a snapshot module's: its program part's).
        const program = isSnapshot(options.bytes) ? (await readSnapshot(options.bytes)).program : options.bytes;
        compiled = await this.cache.get(program, { maxMemoryPages: options.maxMemoryPages }, program === options.bytes ? options.hash : undefined);
      }
      hosted = await this.hosting.host({
        common: {
          registry: this.registry,
          context: options.context,
          function: options.function,
          timeLimit: options.timeLimit,
          timeResolution: options.timeResolution,
          debug: options.debug,
        },
        compiled,
        snapshot: snapshot ? options.bytes : null,
        dormant: options.dormant,
        hibernate: options.hibernate === true,
        cache: this.cache,
        maxMemoryPages: options.maxMemoryPages,
        events: {
          onHibernated: (h) => local.hibernated({ checkpoint: h.name, size: h.size, idle: h.idle, wakeAt: h.wakeAt, waiting: h.waiting }),
          onWoken: () => local.woke(),
          onResident: hooks && ((p) => hooks.resident(p.instance)),
        },
        working: hooks && ((work) => hooks.working(work)),
      });
    } catch (error) {
      throw classify(error);
    }
    const info = (compiled ?? hosted.program!.compiled).prepared.info;
    if (this.tableBudget && this.tables + info.tableBytes > this.tableBudget.bytes) {
      hosted.dispose();
      throw new ExecError('busy', `no worker has heap left for the instance's tables (${this.tableBudget.key})`);
    }
    this.tables += info.tableBytes;
    const local: LocalInstance = new LocalInstance(hosted, instanceMemoryBytes(info, options.maxMemoryPages), options, () => {
      this.live.delete(local);
      this.tables -= info.tableBytes;
    });
    this.live.add(local);
    return local;
  }

  workers(): { id: number; instances: number; stuck: boolean; hibernated: number }[] {
    let hibernated = 0;
    for (const l of this.live) if (l.hibernating) hibernated++;
    return [{ id: 0, instances: this.live.size, stuck: false, hibernated }];
  }

  async freeze(): Promise<Set<string>> {
    this.hosting.hibernator.stop();
    const frozen = new Set<string>();
    for (const l of this.live) if (l.freeze()) frozen.add(l.name);
    return frozen;
  }

  async close(): Promise<void> {}
}

class LocalInstance implements ExecInstance {
  private readonly program: HostedProgram;
  private readonly onRelease: () => void;
  private readonly options: Pick<CreateOptions, 'onHibernated' | 'onWoken' | 'context'>;
  private released = false;
  readonly memoryLimit: number;
  hibernating: boolean;

  constructor(program: HostedProgram, memoryLimit: number, options: Pick<CreateOptions, 'onHibernated' | 'onWoken' | 'context' | 'dormant'>, onRelease: () => void) {
    this.program = program;
    this.memoryLimit = memoryLimit;
    this.options = options;
    this.onRelease = onRelease;
    this.hibernating = options.dormant !== undefined;
  }

  get name(): string {
    return this.options.context.instance;
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
      return await this.program.snapshot();
    } catch (error) {
      throw classify(error);
    }
  }

  async inspect(): Promise<Inspection> {
    if (this.program.status.state === State.RUNNING) throw new ExecError('state', 'instance must be stopped');
    const state = await this.program.capture();
    return { memory: state.memory, globals: [...state.globals.entries()].sort((a, b) => a[0] - b[0]) };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.program.dispose();
    this.onRelease();
  }

  freeze(): boolean {
    return this.program.freeze();
  }

  hibernated(h: HibernationReport): void {
    this.hibernating = h.waiting;
    this.options.onHibernated?.(h);
  }

  woke(): void {
    this.hibernating = false;
    this.options.onWoken?.();
  }
}
