// Instances in a pool of worker threads, many per thread (each thread's
// engine runs its instances as green threads). The handlers see the same
// Executor interface as with InProcessExecutor.
//
// Preparation (validation and Binaryen instrumentation, up to seconds for a
// big program) happens once per program and memory limit, in a separate
// preparer thread that holds no instances, through the on-disk ModuleCache.
// The preparer sends back the compiled WebAssembly.Module; V8 shares compiled
// code between threads, so instance threads receive it without compiling
// again, and nothing slow ever runs on an instance thread or on the main
// thread. (Preparing per instance thread from the disk cache would compile
// every program once per thread and stall that thread's instances during a
// first preparation; preparing on the main thread would stall every request.)
//
// A watchdog pings every instance thread. One that does not answer within
// stuckTimeout (a runaway program that somehow holds the thread, or a bug) is
// terminated and replaced; its instances end as KILLED with cause INTERNAL and
// are reported through onWorkerLost. The other threads keep serving.

import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExecError, type CreateOptions, type ExecInstance, type Executor, type ProgramFacts } from './executor.ts';
import { isSnapshot } from '../host/snapshot.ts';
import type { CreateReply, FromWorker, PrepareReply, ProgramShare, WorkerSetup } from './worker/protocol.ts';
import { RemoteInstance } from './worker/remote-instance.ts';
import { WorkerThread, type LossKind, type ThreadHandlers } from './worker/thread.ts';

export interface WorkerExecutorOptions {
  /** Instance threads (default: available parallelism). */
  workers?: number;
  /** ModuleCache directory for prepared modules (null: memory only). */
  cacheDir: string | null;
  /**
   * Server-wide services, built inside every instance thread: a module (URL,
   * absolute path or package name) exporting createRegistry(options) →
   * Registry or a promise of one; options must survive structured cloning.
   * Default: no services beyond origin and catalog.
   */
  services?: { module: string | URL; options?: unknown };
  /** Milliseconds between heartbeats (default 1000). */
  heartbeatInterval?: number;
  /** A thread that has not answered for this many milliseconds is stuck (default 10000). */
  stuckTimeout?: number;
  /** Milliseconds a new thread may take to start (default 30000). */
  startTimeout?: number;
  /** Called when a thread is lost (stuck or crashed), after its instances have been killed. */
  onWorkerLost?: (report: WorkerLostReport) => void;
  /**
   * Live instances in all threads together (default 16000). Every instance
   * holds a WebAssembly.Memory, and V8 reserves about 8 GiB of address space
   * for each, which caps a process at about 16,360 memories whatever their
   * size; failing a create with a clear error beats failing an allocation.
   */
  maxInstances?: number;
  /** Enables blockWorkerForTest (tests only). */
  testHooks?: boolean;
}

export interface WorkerLostReport {
  worker: number;
  kind: LossKind;
  message: string;
  /** Instance ids (ServiceContext.instance) that were killed with it. */
  instances: string[];
}

export class WorkerExecutor implements Executor {
  private readonly options: WorkerExecutorOptions;
  private readonly heartbeatInterval: number;
  private readonly stuckTimeout: number;
  private readonly startTimeout: number;
  private readonly maxInstances: number;
  private threads: WorkerThread[] = [];
  /** Threads being terminated after a loss (still listed, as stuck, until gone). */
  private leaving = new Set<WorkerThread>();
  private preparer: WorkerThread | null = null;
  /** Compiled programs by key (program sha256 and memory limit); kept for the executor's life. */
  private readonly programs = new Map<string, ProgramShare>();
  /** Preparations by module hash and memory limit (snapshots only while under way). */
  private readonly modules = new Map<string, Promise<{ key: string; facts: ProgramFacts }>>();
  private readonly handlers: ThreadHandlers;
  private readonly timer: ReturnType<typeof setInterval>;
  private lastTick = performance.now();
  private nextThreadId = 1;
  private nextInstanceId = 1;
  /** Creates under way (counted against maxInstances). */
  private creating = 0;
  private closed = false;

  constructor(options: WorkerExecutorOptions) {
    this.options = options;
    const count = options.workers ?? os.availableParallelism();
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`worker count must be a positive integer: ${count}`);
    this.heartbeatInterval = options.heartbeatInterval ?? 1000;
    this.stuckTimeout = options.stuckTimeout ?? 10_000;
    this.startTimeout = options.startTimeout ?? 30_000;
    this.maxInstances = options.maxInstances ?? 16_000;
    this.handlers = {
      event: (thread, m) => this.event(thread, m),
      failed: (thread, kind, message) => this.lose(thread, kind, message),
    };
    for (let i = 0; i < count; i++) this.threads.push(this.spawn('instances'));
    this.preparer = this.spawn('prepare');
    this.timer = setInterval(() => this.watch(), this.heartbeatInterval);
    this.timer.unref();
  }

  async prepare(bytes: Uint8Array, hash: string, maxMemoryPages: number): Promise<ProgramFacts> {
    return (await this.prepareProgram(bytes, hash, maxMemoryPages)).facts;
  }

  async create(options: CreateOptions): Promise<ExecInstance> {
    const live = this.threads.reduce((n, t) => n + t.instances.size, this.creating);
    if (live >= this.maxInstances) {
      throw new ExecError('internal', `ERR_INSTANCE_LIMIT: this server process holds at most ${this.maxInstances} live instances`);
    }
    this.creating++;
    try {
      return await this.createCounted(options);
    } finally {
      this.creating--;
    }
  }

  private async createCounted(options: CreateOptions): Promise<ExecInstance> {
    // A snapshot goes straight to a thread, which names its program if it
    // lacks it; a plain program is prepared (once) first.
    const snapshot = isSnapshot(options.bytes) ? options.bytes : null;
    let key = snapshot ? null : (await this.prepareProgram(options.bytes, options.hash, options.maxMemoryPages)).key;
    const thread = this.place();
    const id = this.nextInstanceId++;
    thread.reserved++;
    let reply: CreateReply;
    try {
      reply = await this.createOn(thread, id, key, snapshot, options);
      if ('need' in reply) {
        key = reply.need;
        if (!this.programs.has(key)) await this.prepareProgram(options.bytes, options.hash, options.maxMemoryPages);
        reply = await this.createOn(thread, id, key, snapshot, options);
        if ('need' in reply) throw new ExecError('internal', `worker ${thread.id} still lacks program ${reply.need}`);
      }
    } finally {
      thread.reserved--;
    }
    const memoryLimit = reply.memoryLimit;
    const inst = new RemoteInstance({
      id,
      thread,
      name: options.context.instance,
      status: reply.status,
      memoryLimit,
      debug: options.debug,
      onForget: () => {
        if (thread.instances.delete(id)) thread.memory -= memoryLimit;
      },
    });
    if (thread.gone) {
      // Lost while the reply was on its way.
      inst.lost(new ExecError('internal', `worker ${thread.id} was lost`));
    } else {
      thread.instances.set(id, inst);
      thread.memory += memoryLimit;
    }
    return inst;
  }

  private createOn(
    thread: WorkerThread,
    id: number,
    key: string | null,
    snapshot: Uint8Array | null,
    options: CreateOptions,
  ): Promise<CreateReply> {
    const share = key !== null && !thread.shares.has(key) ? this.programs.get(key)! : null;
    if (share) thread.shares.add(share.key);
    return thread
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
      }))
      .catch((error: unknown) => {
        if (share) thread.shares.delete(share.key);
        throw error;
      });
  }

  workers(): { id: number; instances: number; stuck: boolean }[] {
    return [...new Set([...this.threads, ...this.leaving])].map((t) => ({ id: t.id, instances: t.instances.size, stuck: t.stuck }));
  }

  /** The thread an instance of this executor runs on. */
  workerOf(instance: ExecInstance): number | undefined {
    return instance instanceof RemoteInstance ? instance.thread.id : undefined;
  }

  /**
   * Test hook: block a thread (Atomics.wait) as a runaway program would.
   * Throws unless the executor was made with testHooks.
   */
  blockWorkerForTest(worker: number): void {
    if (!this.options.testHooks) throw new Error('ERR_TEST_HOOKS_DISABLED: blockWorkerForTest needs the testHooks option');
    const thread = this.threads.find((t) => t.id === worker);
    if (!thread) throw new RangeError(`no worker ${worker}`);
    thread.blockForTest();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const all = [...new Set([...this.threads, ...this.leaving])];
    if (this.preparer) all.push(this.preparer);
    const error = new ExecError('internal', 'executor closed');
    for (const t of all) {
      for (const inst of t.instances.values()) inst.lost(error);
      t.terminate(error);
    }
    await Promise.all(all.map((t) => t.exited));
  }

  private spawn(role: WorkerSetup['role']): WorkerThread {
    const setup: WorkerSetup = { role, cacheDir: this.options.cacheDir };
    if (role === 'instances') {
      const services = this.options.services;
      if (services) {
        const m = services.module;
        setup.servicesModule = m instanceof URL ? m.href : path.isAbsolute(m) ? pathToFileURL(m).href : m;
        setup.servicesOptions = services.options;
      }
      if (this.options.testHooks) setup.testBlock = new SharedArrayBuffer(4);
    }
    return new WorkerThread(this.nextThreadId++, setup, this.handlers);
  }

  /**
   * Prepared and compiled once per program and memory limit, shared by all
   * threads. Facts of plain modules are remembered; snapshots (a new one at
   * every checkpoint) are not, only the programs they contain.
   */
  private prepareProgram(bytes: Uint8Array, hash: string, maxMemoryPages: number): Promise<{ key: string; facts: ProgramFacts }> {
    if (this.closed) return Promise.reject(new ExecError('internal', 'executor closed'));
    const id = `${hash}:${maxMemoryPages}`;
    let entry = this.modules.get(id);
    if (!entry) {
      this.preparer ??= this.spawn('prepare');
      entry = this.preparer
        .request<PrepareReply>((req) => ({ op: 'prepare', req, bytes, maxMemoryPages }))
        .then((reply) => {
          if (reply.share && !this.programs.has(reply.key)) this.programs.set(reply.key, reply.share);
          if (!this.programs.has(reply.key)) throw new ExecError('internal', `preparer did not send program ${reply.key}`);
          if (reply.facts.snapshot) this.modules.delete(id);
          return { key: reply.key, facts: reply.facts };
        });
      this.modules.set(id, entry);
      entry.catch(() => this.modules.delete(id));
    }
    return entry;
  }

  /** The instance thread with the fewest instances, then the least memory. */
  private place(): WorkerThread {
    let best: WorkerThread | undefined;
    for (const t of this.threads) {
      if (t.gone) continue;
      if (!best || t.load < best.load || (t.load === best.load && t.memory < best.memory)) best = t;
    }
    if (!best) throw new ExecError('internal', this.closed ? 'executor closed' : 'no worker thread is available');
    return best;
  }

  private event(thread: WorkerThread, m: FromWorker): void {
    if (m.ev !== 'stopped' && m.ev !== 'run-error' && m.ev !== 'debug') return;
    const inst = thread.instances.get(m.id);
    if (!inst) return;
    if (m.ev === 'stopped') inst.stopped(m.status);
    else if (m.ev === 'run-error') inst.runFailed(m.error);
    else inst.debugOutput(m.chunk);
  }

  private watch(): void {
    const now = performance.now();
    // If this thread itself was held up, answers may be waiting in its queue: judge next time.
    const late = now - this.lastTick > this.heartbeatInterval * 2 + 100;
    this.lastTick = now;
    for (const t of this.threads) {
      if (t.gone) continue;
      const limit = t.ready ? this.stuckTimeout : this.startTimeout;
      if (!late && now - t.lastAnswer > limit) {
        const what = t.ready ? 'stopped answering heartbeats' : 'did not start';
        this.lose(t, 'stuck', `worker ${t.id} ${what} for ${Math.round(now - t.lastAnswer)} ms`);
      } else if (t.ready) {
        t.ping();
      }
    }
  }

  private replace(thread: WorkerThread): void {
    const i = this.threads.indexOf(thread);
    if (i >= 0 && !this.closed) this.threads[i] = this.spawn('instances');
  }

  /** A thread is lost: kill its instances, report them, and replace the thread. */
  private lose(thread: WorkerThread, kind: LossKind, message: string): void {
    if (thread.gone) return;
    thread.stuck = kind === 'stuck';
    const error = new ExecError('internal', `${message}; its instances were killed`);
    const instances = [...thread.instances.values()];
    thread.instances.clear();
    thread.memory = 0;
    for (const inst of instances) inst.lost(error);
    if (thread.role === 'instances') this.leaving.add(thread);
    thread.terminate(error).then(() => this.leaving.delete(thread));
    if (thread === this.preparer) {
      this.preparer = null; // a new one is started on the next preparation
    } else if (thread.ready) {
      this.replace(thread);
    } else {
      // It never started: wait a little, so that a thread that cannot start is not restarted in a tight loop.
      setTimeout(() => this.replace(thread), 1000).unref();
    }
    try {
      this.options.onWorkerLost?.({ worker: thread.id, kind, message, instances: instances.map((inst) => inst.name) });
    } catch {
      // The report is best effort.
    }
  }
}
