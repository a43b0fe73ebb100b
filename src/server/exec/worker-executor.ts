// Instances in a pool of worker processes, many per process (each process's
// engine runs its instances as green threads). The handlers see the same
// Executor interface as with InProcessExecutor.
//
// Preparation (validation and our rewrite, docs/engine.md: linear, but
// seconds for a module of many megabytes, and what a hostile module asks of
// it must stay bounded) happens once per program and memory limit, in
// separate preparer processes that hold no instances, through the on-disk
// ModuleCache (worker/preparers.ts: deadline, memory cap, fairness between
// owners). The prepared program goes to the instance processes, which only
// compile it, so nothing slow runs on an instance process or on the server's
// thread.
//
// A watchdog pings every instance process. One that does not answer within
// stuckTimeout (a program that somehow holds it, or a bug) is killed, which
// always works for a process, and replaced. The instance whose slice it was
// in ends KILLED with an error naming the limit; the others were bystanders:
// they end KILLED/INTERNAL with `lostAs = 'bystander'`, and the server
// restores them from their last checkpoint on another process. A process
// that crashes or passes its memory cap is handled the same way.
//
// Processes, not threads: a thread that V8 cannot interrupt can neither be
// terminated nor let the process exit, while a process always dies of
// SIGKILL and takes its memory along (docs/security.md).

import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { pathToFileURL } from 'node:url';
import { ExecError, hibernationOf, type CreateOptions, type ExecInstance, type Executor, type ProgramFacts } from './executor.ts';
import { defaultCacheDir } from '../../host/module-cache.ts';
import { isSnapshot } from '../../host/snapshot.ts';
import { tableBytes } from '../../runtime/prepare/limits.ts';
import { parseModule } from '../../runtime/wasm/module.ts';
import { PreparerPool, type PreparerLimits } from './worker/preparers.ts';
import { WorkerProcess, type LossKind, type ProcessHandlers } from './worker/process.ts';
import type { CreateReply, FromWorker, PrepareReply, ProgramShare, WorkerSetup } from './worker/protocol.ts';
import { RemoteInstance } from './worker/remote-instance.ts';
import { RecentMap } from '../util/recent-map.ts';
import type { Config } from '../config/config.ts';

export interface WorkerExecutorOptions {
  /** Instance processes (default: available parallelism). */
  workers?: number;
  /** ModuleCache directory for prepared modules (null: memory only). */
  cacheDir: string | null;
  /** Bytes the cache directory is kept below (default: no bound). */
  cacheBytes?: number;
  /**
   * Server-wide services, built inside every instance process: a module (URL,
   * absolute path or package name) exporting createRegistry(options) →
   * Registry or a promise of one; options must survive V8 serialization.
   * Default: no services beyond origin and catalog.
   */
  services?: { module: string | URL; options?: unknown };
  /** BroadcastChannels that span the worker processes (the peer service's), as they span threads of one process. */
  relayChannels?: string[];
  /** Milliseconds between heartbeats (default 1000). */
  heartbeatInterval?: number;
  /** A process that has not answered for this many milliseconds is stuck (default 10000). */
  stuckTimeout?: number;
  /** Milliseconds a new process may take to start (default 30000). */
  startTimeout?: number;
  /** V8 heap of an instance process, in MiB (tables live there); past it the process dies and is replaced. */
  workerHeapMiB?: number;
  /** Resident bytes an instance process may reach; past it the process is killed and replaced (default: no cap). */
  workerMemory?: number;
  /** Called when a process is lost (stuck, crashed or over its memory), after its instances have ended. */
  onWorkerLost?: (report: WorkerLostReport) => void;
  /**
   * Live instances (holding a memory) in each process: the size of its
   * memory pool (default 15000). V8 reserves about 8 GiB of address space
   * for every WebAssembly.Memory, which caps a process at about 16,360
   * memories whatever their size; failing a create with a clear error beats
   * failing an allocation. With hibernation, instances that wait give their
   * memory back, and a full pool hibernates the longest waiting at once.
   */
  maxInstances?: number;
  /** Milliseconds a new instance waits for a memory (others hibernating) before it is refused (default 5000). */
  memoryWait?: number;
  /** Hibernate persistent instances that wait this long; their snapshots become module files in moduleDir (the data directory's). */
  hibernation?: { moduleDir: string; idleMs: number };
  /** Preparation limits (defaults: 2 preparers, 120 s, 2 GiB, 8 waiting per owner). */
  prepare?: Partial<PreparerLimits>;
  /** Configuration key names, for the errors that name a limit. */
  keys?: { watchdog?: string; prepareTimeout?: string; prepareMemory?: string; prepareQueue?: string; workerMemory?: string; workerHeap?: string; maxInstances?: string };
  /** Enables blockWorkerForTest (tests only). */
  testHooks?: boolean;
  /** A hibernation snapshot of an instance already released: the server records and removes it. */
  onUnclaimedHibernation?: (checkpoint: string, size: number) => void;
}

export interface WorkerLostReport {
  worker: number;
  kind: LossKind;
  message: string;
  /** Instance ids (ServiceContext.instance) that ended with it. */
  instances: string[];
  /** The one blamed for it, when one was in its slice. */
  offender?: string;
}

/** Prepared programs kept to hand to instance processes (and their bytes); older ones are prepared again (a disk cache hit). */
const PROGRAMS_KEPT = 256;
const PROGRAM_BYTES_KEPT = 64 * 1024 * 1024;
/** Module facts and refusals remembered (a refused module is refused at once when it comes again). */
const FACTS_KEPT = 10_000;
/** Prepared programs an instance process keeps compiled without instances using them. */
const UNUSED_SHARES_KEPT = 32;

const DEFAULT_PREPARE: PreparerLimits = { preparers: 2, timeout: 120_000, memory: 2048 * 1024 * 1024, queue: 8 };


type Prepared = { key: string; facts: ProgramFacts };

const MIB = 1024 * 1024;

/** The heap the tables of a snapshot's program take (0 for what does not parse: the worker refuses it). */
function snapshotTableBytes(snapshot: Uint8Array): number {
  try {
    return tableBytes(parseModule(snapshot));
  } catch {
    return 0;
  }
}

/** The executor gate-server and gate-daemon run with (runtime.* keys, docs/server.md); `dataDir` for hibernation. */
export function workerExecutorOptions(config: Config, onWorkerLost?: (report: WorkerLostReport) => void, dataDir = config.server.datadir): WorkerExecutorOptions {
  const r = config.runtime;
  return {
    hibernation: hibernationOf(config, dataDir),
    workers: r.workers,
    cacheDir: r.cachedir || defaultCacheDir(),
    cacheBytes: r.cachesize > 0 ? r.cachesize * MIB : undefined,
    stuckTimeout: r.watchdog * 1000,
    maxInstances: r.maxinstances,
    workerHeapMiB: r.workerheap > 0 ? r.workerheap : undefined,
    workerMemory: r.workermemory > 0 ? r.workermemory * MIB : undefined,
    prepare: { preparers: r.preparers, timeout: r.preparetimeout * 1000, memory: r.preparememory * MIB, queue: r.preparequeue },
    keys: {
      watchdog: 'runtime.watchdog',
      prepareTimeout: 'runtime.preparetimeout',
      prepareMemory: 'runtime.preparememory',
      prepareQueue: 'runtime.preparequeue',
      workerMemory: 'runtime.workermemory',
      workerHeap: 'runtime.workerheap',
      maxInstances: 'runtime.maxinstances',
    },
    // Every instance process builds the configured services (config.service) itself; peers meet across them.
    services: { module: new URL('../../services/node/registry.ts', import.meta.url), options: config.service },
    relayChannels: config.service.peer.enabled ? [config.service.peer.channel] : [],
    onWorkerLost,
  };
}

export class WorkerExecutor implements Executor {
  private readonly options: WorkerExecutorOptions;
  private readonly heartbeatInterval: number;
  private readonly stuckTimeout: number;
  private readonly startTimeout: number;
  private readonly maxInstances: number;
  /** Table bytes a worker may hold: most of its heap (the rest is for the runtime and the instances' objects). */
  private readonly heapBudget: number;
  private workersList: WorkerProcess[] = [];
  /** Processes being killed after a loss (still listed, as stuck, until gone). */
  private leaving = new Set<WorkerProcess>();
  private readonly preparers: PreparerPool;
  /** Prepared programs by key (program sha256 and memory limit). */
  private readonly programs = new RecentMap<string, ProgramShare>(PROGRAMS_KEPT, {
    of: (share) => share.program.byteLength + share.prepared.bytes.byteLength,
    max: PROGRAM_BYTES_KEPT,
  });
  /** Preparations by module hash and memory limit: under way, done (facts) or refused. */
  private readonly modules = new RecentMap<string, Promise<Prepared>>(FACTS_KEPT);
  private readonly handlers: ProcessHandlers;
  private readonly timer: ReturnType<typeof setInterval>;
  private lastTick = performance.now();
  private nextWorkerId = 1;
  private nextInstanceId = 1;
  private closed = false;
  /** The relayed channels in this process too: what the workers say reaches it (a cluster's peer bridge), and what is said here reaches them. */
  private readonly relays = new Map<string, BroadcastChannel>();

  constructor(options: WorkerExecutorOptions) {
    this.options = options;
    const count = options.workers ?? os.availableParallelism();
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`worker count must be a positive integer: ${count}`);
    this.heartbeatInterval = options.heartbeatInterval ?? 1000;
    this.stuckTimeout = options.stuckTimeout ?? 10_000;
    this.startTimeout = options.startTimeout ?? 30_000;
    this.maxInstances = options.maxInstances ?? 15_000;
    // Without a heap limit of their own, workers get Node's default, which this process has too.
    const heap = options.workerHeapMiB ? options.workerHeapMiB * MIB : v8.getHeapStatistics().heap_size_limit;
    this.heapBudget = heap * 0.7;
    for (const name of options.relayChannels ?? []) {
      const bc = new BroadcastChannel(name);
      (bc as unknown as { unref?: () => void }).unref?.();
      bc.onmessage = (ev: MessageEvent) => {
        for (const w of this.workersList) w.post({ op: 'broadcast', channel: name, data: ev.data });
      };
      this.relays.set(name, bc);
    }
    this.handlers = {
      event: (worker, m) => this.event(worker, m),
      failed: (worker, kind, message) => this.lose(worker, kind, message),
    };
    const keys = options.keys ?? {};
    this.preparers = new PreparerPool({
      ...DEFAULT_PREPARE,
      ...options.prepare,
      cacheDir: options.cacheDir,
      cacheBytes: options.cacheBytes,
      keys: {
        timeout: keys.prepareTimeout ?? 'preparation timeout',
        memory: keys.prepareMemory ?? 'preparation memory',
        queue: keys.prepareQueue ?? 'preparation queue',
      },
      nextId: () => this.nextWorkerId++,
    });
    for (let i = 0; i < count; i++) this.workersList.push(this.spawn());
    this.timer = setInterval(() => this.watch(), this.heartbeatInterval);
    this.timer.unref();
  }

  async prepare(bytes: Uint8Array, hash: string, maxMemoryPages: number, owner?: string): Promise<ProgramFacts> {
    return (await this.prepareProgram(bytes, hash, maxMemoryPages, owner)).facts;
  }

  /** Each worker's pool holds the live ones (maxInstances); it answers 503 naming the key when it cannot make room. */
  async create(options: CreateOptions): Promise<ExecInstance> {
    // A snapshot goes straight to a worker, which names its program if it
    // lacks it; a plain program is prepared (once) first, and so is the
    // module of a dormant instance, which its hibernation snapshot restores with.
    const snapshot = !options.dormant && isSnapshot(options.bytes) ? options.bytes : null;
    let key = snapshot ? null : (await this.prepareProgram(options.bytes, options.hash, options.maxMemoryPages, options.owner)).key;
    let tableBytes = snapshot ? snapshotTableBytes(snapshot) : (this.programs.get(key!)?.prepared.info.tableBytes ?? 0);
    const worker = this.place(tableBytes);
    const id = this.nextInstanceId++;
    worker.reserved++;
    worker.heap += tableBytes;
    let reply: CreateReply;
    try {
      reply = await this.createOn(worker, id, key, snapshot, options);
      if ('need' in reply) {
        key = reply.need;
        if (!this.programs.has(key)) await this.prepareProgram(options.bytes, options.hash, options.maxMemoryPages, options.owner, true);
        reply = await this.createOn(worker, id, key, snapshot, options);
        if ('need' in reply) throw new ExecError('internal', `worker ${worker.id} still lacks program ${reply.need}`);
      }
    } finally {
      worker.reserved--;
      worker.heap -= tableBytes;
    }
    tableBytes = reply.tableBytes;
    const memoryLimit = reply.memoryLimit;
    const shareKey = key;
    const inst = new RemoteInstance({
      id,
      worker,
      name: options.context.instance,
      status: reply.status,
      memoryLimit,
      debug: options.debug,
      onLost: options.onLost,
      onHibernated: options.onHibernated,
      onWoken: options.onWoken,
      hibernating: options.dormant !== undefined,
      onForget: () => {
        if (!worker.instances.delete(id)) return;
        worker.memory -= memoryLimit;
        worker.heap -= tableBytes;
        if (shareKey !== null) this.unuse(worker, shareKey);
      },
    });
    if (worker.gone) {
      // Lost while the reply was on its way.
      inst.lost(new ExecError('internal', `worker ${worker.id} was lost`));
    } else {
      worker.instances.set(id, inst);
      worker.memory += memoryLimit;
      worker.heap += tableBytes;
      if (key !== null) worker.shares.set(key, (worker.shares.get(key) ?? 0) + 1);
      if (worker.heap > this.heapBudget) {
        inst.release();
        throw this.heapFull();
      }
    }
    return inst;
  }

  private createOn(
    worker: WorkerProcess,
    id: number,
    key: string | null,
    snapshot: Uint8Array | null,
    options: CreateOptions,
  ): Promise<CreateReply> {
    let share: ProgramShare | null = null;
    if (key !== null && !worker.shares.has(key)) {
      share = this.programs.get(key) ?? null;
      if (!share) return Promise.reject(new ExecError('internal', `program ${key} is not at hand`));
      worker.shares.set(key, 0);
    }
    return worker
      .request<CreateReply>((req) => ({
        op: 'create',
        req,
        id,
        share,
        key,
        snapshot,
        function: options.function,
        context: { instance: options.context.instance, principal: options.context.principal, scope: [...options.context.scope] },
        maxMemoryPages: options.maxMemoryPages,
        timeLimit: options.timeLimit,
        timeResolution: options.timeResolution,
        debug: options.debug !== undefined,
        hibernate: options.hibernate === true && this.options.hibernation !== undefined,
        dormant: options.dormant,
      }), id)
      .catch((error: unknown) => {
        if (share && worker.shares.get(share.key) === 0) worker.shares.delete(share.key);
        throw error;
      });
  }

  /** An instance no longer uses a program: past a few unused ones, the process forgets the oldest. */
  private unuse(worker: WorkerProcess, key: string): void {
    const users = (worker.shares.get(key) ?? 1) - 1;
    worker.shares.delete(key);
    worker.shares.set(key, users); // most recently used last
    let unused = 0;
    for (const n of worker.shares.values()) if (n === 0) unused++;
    for (const [k, n] of worker.shares) {
      if (unused <= UNUSED_SHARES_KEPT) break;
      if (n !== 0) continue;
      worker.shares.delete(k);
      worker.post({ op: 'forget', key: k });
      unused--;
    }
  }

  workers(): { id: number; instances: number; stuck: boolean; hibernated: number }[] {
    return [...new Set([...this.workersList, ...this.leaving])].map((t) => {
      let hibernated = 0;
      for (const inst of t.instances.values()) if (inst.hibernating) hibernated++;
      return { id: t.id, instances: t.instances.size, stuck: t.stuck, hibernated };
    });
  }

  async freeze(): Promise<Set<string>> {
    const frozen = new Set<string>();
    await Promise.all(
      this.workersList.map(async (w) => {
        if (w.gone) return;
        const ids = await w.request<number[]>((req) => ({ op: 'freeze', req })).catch(() => []);
        for (const id of ids) {
          const inst = w.instances.get(id);
          if (inst) frozen.add(inst.name);
        }
      }),
    );
    return frozen;
  }

  /** The worker an instance of this executor runs on. */
  workerOf(instance: ExecInstance): number | undefined {
    return instance instanceof RemoteInstance ? instance.worker.id : undefined;
  }

  /**
   * Test hook: make a worker stop answering for good, as a program V8
   * cannot interrupt would (`heap`: fill its heap until V8 aborts, as
   * something the server does not count could). Given an instance (its
   * ServiceContext.instance id), in that instance's slice, on that
   * instance's worker unless `worker` is given. Throws unless the executor
   * was made with testHooks.
   */
  blockWorkerForTest(worker?: number, instance?: string, how: 'loop' | 'heap' = 'loop'): void {
    if (!this.options.testHooks) throw new Error('ERR_TEST_HOOKS_DISABLED: blockWorkerForTest needs the testHooks option');
    let target: RemoteInstance | undefined;
    for (const w of this.workersList) for (const inst of w.instances.values()) if (inst.name === instance) target = inst;
    const w = worker === undefined ? target?.worker : this.workersList.find((t) => t.id === worker);
    if (!w) throw new RangeError(`no worker ${worker ?? `for instance ${instance}`}`);
    w.blockForTest(target?.worker === w ? target.id : undefined, how);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const bc of this.relays.values()) bc.close();
    this.relays.clear();
    const all = [...new Set([...this.workersList, ...this.leaving])];
    const error = new ExecError('internal', 'executor closed');
    for (const t of all) {
      for (const inst of t.instances.values()) inst.lost(error);
      void t.terminate(error);
    }
    await Promise.all([...all.map((t) => t.exited), this.preparers.close()]);
  }

  private spawn(): WorkerProcess {
    const setup: WorkerSetup = {
      role: 'instances',
      cacheDir: null,
      testHooks: this.options.testHooks,
      relayChannels: this.options.relayChannels,
      memories: { capacity: this.maxInstances, key: `${this.options.keys?.maxInstances ?? 'live instances per worker process'} = ${this.maxInstances}`, wait: this.options.memoryWait },
      hibernation: this.options.hibernation,
    };
    const services = this.options.services;
    if (services) {
      const m = services.module;
      setup.servicesModule = m instanceof URL ? m.href : path.isAbsolute(m) ? pathToFileURL(m).href : m;
      setup.servicesOptions = services.options;
    }
    return new WorkerProcess(this.nextWorkerId++, setup, this.handlers, { heapMiB: this.options.workerHeapMiB });
  }

  /**
   * Prepared once per program and memory limit, shared by all workers. Facts
   * of plain modules are remembered, and so are refusals; snapshots (a new
   * one at every checkpoint) are not, only the programs they contain.
   * `again` prepares even when the facts are known (the program was let go).
   */
  private prepareProgram(bytes: Uint8Array, hash: string, maxMemoryPages: number, owner = '', again = false): Promise<Prepared> {
    if (this.closed) return Promise.reject(new ExecError('internal', 'executor closed'));
    const id = `${hash}:${maxMemoryPages}`;
    const known = again ? undefined : this.modules.get(id);
    if (known) {
      return known.then((p) => (this.programs.has(p.key) ? p : this.prepareProgram(bytes, hash, maxMemoryPages, owner, true)));
    }
    const entry = this.preparers.prepare(bytes, maxMemoryPages, owner).then((reply: PrepareReply) => {
      this.programs.set(reply.key, reply.share);
      if (reply.facts.snapshot) this.modules.delete(id);
      return { key: reply.key, facts: reply.facts };
    });
    this.modules.set(id, entry);
    entry.catch((error: unknown) => {
      // A module that was refused stays refused; anything else may be tried again.
      if (!(error instanceof ExecError && error.kind === 'module')) this.modules.delete(id);
    });
    return entry;
  }

  /** The worker with the fewest instances, then the least memory, among those with room for `tableBytes` of heap. */
  private place(tableBytes: number): WorkerProcess {
    let best: WorkerProcess | undefined;
    let full = false;
    for (const t of this.workersList) {
      if (t.gone) continue;
      if (t.heap + tableBytes > this.heapBudget) {
        full = true;
        continue;
      }
      if (!best || t.load < best.load || (t.load === best.load && t.memory < best.memory)) best = t;
    }
    if (!best && full) throw this.heapFull();
    if (!best) throw new ExecError('internal', this.closed ? 'executor closed' : 'no worker is available');
    return best;
  }

  private heapFull(): ExecError {
    const heap = this.options.workerHeapMiB;
    return new ExecError('busy', `no worker has heap left for the instance's tables (${this.options.keys?.workerHeap ?? 'worker heap'} = ${heap ? `${heap} MiB` : "Node's default"})`);
  }

  private event(worker: WorkerProcess, m: FromWorker): void {
    if (m.ev === 'broadcast') {
      for (const other of this.workersList) if (other !== worker) other.post({ op: 'broadcast', channel: m.channel, data: m.data });
      this.relays.get(m.channel)?.postMessage(m.data);
      return;
    }
    if (m.ev !== 'stopped' && m.ev !== 'run-error' && m.ev !== 'debug' && m.ev !== 'hibernated' && m.ev !== 'woke') return;
    const inst = worker.instances.get(m.id);
    if (!inst) {
      // Its record is gone: the snapshot is no one's checkpoint (the server still records it, then removes it).
      if (m.ev === 'hibernated') this.options.onUnclaimedHibernation?.(m.checkpoint, m.size);
      return;
    }
    if (m.ev === 'stopped') inst.stopped(m.status);
    else if (m.ev === 'run-error') inst.runFailed(m.error);
    else if (m.ev === 'hibernated') inst.hibernated({ checkpoint: m.checkpoint, size: m.size, idle: m.idle, wakeAt: m.wakeAt, waiting: m.waiting });
    else if (m.ev === 'woke') inst.woke();
    else inst.debugOutput(m.chunk);
  }

  private watch(): void {
    const now = performance.now();
    // If this thread itself was held up, answers may be waiting in its queue: judge next time.
    const late = now - this.lastTick > this.heartbeatInterval * 2 + 100;
    this.lastTick = now;
    const cap = this.options.workerMemory;
    for (const t of this.workersList) {
      if (t.gone) continue;
      const limit = t.ready ? this.stuckTimeout : this.startTimeout;
      if (!late && now - t.lastAnswer > limit) {
        const what = t.ready ? 'stopped answering heartbeats' : 'did not start';
        this.lose(t, 'stuck', `worker ${t.id} ${what} for ${Math.round(now - t.lastAnswer)} ms`);
        continue;
      }
      const rss = cap === undefined ? undefined : t.rss();
      if (cap !== undefined && rss !== undefined && rss > cap) {
        const mib = Math.round(cap / 2 ** 20);
        this.lose(t, 'memory', `worker ${t.id} used more than ${mib} MiB (${this.options.keys?.workerMemory ?? 'worker memory'} = ${mib})`);
      } else if (t.ready) {
        t.ping();
      }
    }
  }

  private replace(worker: WorkerProcess): void {
    const i = this.workersList.indexOf(worker);
    if (i >= 0 && !this.closed) this.workersList[i] = this.spawn();
  }

  /**
   * A process is lost: end its instances (the one in its slice as the
   * offender, the others as bystanders), report them, and replace it.
   */
  private lose(worker: WorkerProcess, kind: LossKind, message: string): void {
    if (worker.gone) return;
    worker.stuck = kind === 'stuck';
    const error = new ExecError('internal', `${message}; its instances ended`);
    const instances = [...worker.instances.values()];
    const offender = worker.current === undefined ? undefined : worker.instances.get(worker.current);
    const offence = this.offence(kind, message);
    worker.instances.clear();
    worker.memory = 0;
    worker.heap = 0;
    for (const inst of instances) inst.lost(error, inst === offender ? 'offender' : 'bystander', offence);
    this.leaving.add(worker);
    // An instance being created (or snapshot) when the worker went is blamed the same way.
    const blame = worker.current === undefined ? undefined : { instance: worker.current, error: new ExecError('module', offence) };
    void worker.terminate(error, blame).then(() => this.leaving.delete(worker));
    if (worker.ready) {
      this.replace(worker);
    } else {
      // It never started: wait a little, so that a process that cannot start is not restarted in a tight loop.
      setTimeout(() => this.replace(worker), 1000).unref();
    }
    try {
      this.options.onWorkerLost?.({ worker: worker.id, kind, message, instances: instances.map((inst) => inst.name), offender: offender?.name ?? (blame ? `creating ${blame.instance}` : undefined) });
    } catch {
      // The report is best effort.
    }
  }

  /** What the offender is told. */
  private offence(kind: LossKind, message: string): string {
    const keys = this.options.keys ?? {};
    return offenceText(kind, message, { stuckSeconds: this.stuckTimeout / 1000, heapMiB: this.options.workerHeapMiB, watchdogKey: keys.watchdog, heapKey: keys.workerHeap });
  }

}

/** What the instance that held a lost worker process is told (its status's error), naming the setting. */
export function offenceText(kind: LossKind, message: string, o: { stuckSeconds: number; heapMiB?: number; watchdogKey?: string; heapKey?: string }): string {
  if (kind === 'stuck') return `the program held its worker for ${o.stuckSeconds} s without letting it answer (${o.watchdogKey ?? 'watchdog'} = ${o.stuckSeconds})`;
  if (kind === 'heap') return `the program's worker ran out of memory (${o.heapKey ?? 'worker heap'} = ${o.heapMiB ?? "Node's default"}${o.heapMiB ? ' MiB' : ''})`;
  if (kind === 'memory') return `the program's worker used too much memory: ${message}`;
  return `the program's worker was lost: ${message}`;
}
