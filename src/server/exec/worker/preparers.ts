// Module preparation in a few worker processes, shared fairly between the
// owners that ask (principals; anonymous callers by source address). A
// preparation is bounded: past its deadline or its memory cap the process is
// killed and the module refused naming the limit, and a process that has
// grown (a JavaScript heap rarely gives memory back) is replaced after its
// job, so that no memory stays behind. An owner may hold all but one preparer, so others
// always find one; each owner's queue is bounded. An idle preparer goes
// after a minute.

import { ExecError } from '../executor.ts';
import { WorkerProcess, type LossKind } from './process.ts';
import type { PrepareReply } from './protocol.ts';

export interface PreparerLimits {
  /** Preparer processes at most. */
  preparers: number;
  /** Milliseconds one preparation may take. */
  timeout: number;
  /** Resident bytes a preparer may reach during one preparation. */
  memory: number;
  /** Preparations waiting per owner; more are refused as busy. */
  queue: number;
}

export interface PreparerPoolOptions extends PreparerLimits {
  cacheDir: string | null;
  /** Bytes the cache directory is kept below. */
  cacheBytes?: number;
  /** A preparer larger than this after a job is replaced (default: a quarter of `memory`, at least 384 MiB). */
  recycle?: number;
  /** Milliseconds between memory checks of a busy preparer (default 100). */
  pollInterval?: number;
  /** Configuration key names for the messages (timeout, memory, queue). */
  keys?: { timeout: string; memory: string; queue: string };
  /** Worker ids come from the executor, so that all its processes have distinct ones. */
  nextId: () => number;
}

interface Job {
  bytes: Uint8Array;
  pages: number;
  owner: string;
  resolve: (reply: PrepareReply) => void;
  reject: (error: Error) => void;
}

const MIB = 1024 * 1024;
/** Milliseconds a new preparer may take to start. */
const START_TIMEOUT = 30_000;
/** Milliseconds an idle preparer is kept before it goes. */
const IDLE_TIMEOUT = 60_000;

export class PreparerPool {
  private readonly options: PreparerPoolOptions;
  private readonly keys: { timeout: string; memory: string; queue: string };
  private readonly recycle: number;
  private readonly idle: WorkerProcess[] = [];
  private readonly idleTimers = new Map<WorkerProcess, ReturnType<typeof setTimeout>>();
  private readonly busy = new Map<WorkerProcess, { job: Job; fail: (error: Error) => void }>();
  /** Waiting jobs by owner, owners in round-robin order. */
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<string, number>();
  private closed = false;

  constructor(options: PreparerPoolOptions) {
    if (!Number.isInteger(options.preparers) || options.preparers < 1) throw new RangeError(`preparer count must be a positive integer: ${options.preparers}`);
    this.options = options;
    this.keys = options.keys ?? { timeout: 'preparation timeout', memory: 'preparation memory', queue: 'preparation queue' };
    this.recycle = options.recycle ?? Math.max(384 * MIB, options.memory / 4);
  }

  prepare(bytes: Uint8Array, pages: number, owner: string): Promise<PrepareReply> {
    if (this.closed) return Promise.reject(new ExecError('internal', 'executor closed'));
    let queue = this.queues.get(owner);
    if ((queue?.length ?? 0) >= this.options.queue) {
      return Promise.reject(new ExecError('busy', `too many modules waiting for preparation (${this.keys.queue} = ${this.options.queue})`));
    }
    return new Promise<PrepareReply>((resolve, reject) => {
      if (!queue) this.queues.set(owner, (queue = []));
      queue.push({ bytes, pages, owner, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const error = new ExecError('internal', 'executor closed');
    for (const q of this.queues.values()) for (const job of q) job.reject(error);
    this.queues.clear();
    const all = [...this.idle, ...this.busy.keys()];
    for (const { fail } of this.busy.values()) fail(error);
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate(error)));
  }

  /** An owner may hold every preparer but one while others could want one. */
  private get perOwner(): number {
    return Math.max(1, this.options.preparers - 1);
  }

  private dispatch(): void {
    while (!this.closed && (this.idle.length > 0 || this.idle.length + this.busy.size < this.options.preparers)) {
      const job = this.nextJob();
      if (!job) return;
      this.run(job, this.wake() ?? this.spawn());
    }
  }

  /** An idle preparer waits for work a while, then goes with its memory. */
  private rest(worker: WorkerProcess): void {
    this.idle.push(worker);
    const timer = setTimeout(() => {
      this.idleTimers.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      void worker.terminate(new ExecError('internal', 'idle preparer stopped'));
    }, IDLE_TIMEOUT);
    timer.unref();
    this.idleTimers.set(worker, timer);
  }

  private wake(): WorkerProcess | undefined {
    const worker = this.idle.pop();
    if (worker) {
      clearTimeout(this.idleTimers.get(worker));
      this.idleTimers.delete(worker);
    }
    return worker;
  }

  /** The first waiting job of the first owner in turn that may start one more; that owner goes to the back. */
  private nextJob(): Job | undefined {
    for (const [owner, queue] of this.queues) {
      if ((this.running.get(owner) ?? 0) >= this.perOwner) continue;
      const job = queue.shift()!;
      this.queues.delete(owner);
      if (queue.length > 0) this.queues.set(owner, queue);
      return job;
    }
    return undefined;
  }

  private spawn(): WorkerProcess {
    return new WorkerProcess(
      this.options.nextId(),
      { role: 'prepare', cacheDir: this.options.cacheDir, cacheBytes: this.options.cacheBytes },
      {
        event: () => {},
        failed: (worker, kind, message) => this.lost(worker, kind, message),
      },
    );
  }

  private run(job: Job, worker: WorkerProcess): void {
    this.running.set(job.owner, (this.running.get(job.owner) ?? 0) + 1);
    let settled = false;
    const finish = (outcome: () => void, keep: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearInterval(poll);
      this.busy.delete(worker);
      const n = (this.running.get(job.owner) ?? 1) - 1;
      if (n > 0) this.running.set(job.owner, n);
      else this.running.delete(job.owner);
      if (keep && !worker.gone && (worker.rss() ?? 0) <= this.recycle) this.rest(worker);
      else void worker.terminate(new ExecError('internal', 'preparer replaced'));
      outcome();
      this.dispatch();
    };
    const fail = (error: Error) => finish(() => job.reject(error), false);
    this.busy.set(worker, { job, fail });
    let deadline: ReturnType<typeof setTimeout> | undefined;
    let poll: ReturnType<typeof setInterval> | undefined;
    // The deadline counts from when the preparer has started: a new one's start is not the module's doing.
    deadline = setTimeout(() => fail(new ExecError('internal', 'a preparer did not start')), START_TIMEOUT);
    void worker.started.then(() => {
      if (settled) return;
      clearTimeout(deadline);
      deadline = setTimeout(() => {
        fail(new ExecError('module', `module preparation took longer than ${this.options.timeout / 1000} s (${this.keys.timeout} = ${this.options.timeout / 1000})`));
      }, this.options.timeout);
      poll = setInterval(() => {
        const rss = worker.rss();
        if (rss !== undefined && rss > this.options.memory) {
          const mib = Math.round(this.options.memory / MIB);
          fail(new ExecError('module', `module preparation used more than ${mib} MiB of memory (${this.keys.memory} = ${mib})`));
        }
      }, this.options.pollInterval ?? 100);
      worker
        .request<PrepareReply>((req) => ({ op: 'prepare', req, bytes: job.bytes, maxMemoryPages: job.pages }))
        .then(
          (reply) => finish(() => job.resolve(reply), true),
          // A module the preparer refuses leaves the preparer usable.
          (error: Error) => finish(() => job.reject(error), error instanceof ExecError && error.kind !== 'internal'),
        );
    });
  }

  private lost(worker: WorkerProcess, kind: LossKind, message: string): void {
    const i = this.idle.indexOf(worker);
    if (i >= 0) this.idle.splice(i, 1);
    clearTimeout(this.idleTimers.get(worker));
    this.idleTimers.delete(worker);
    // A preparer dies of what it was preparing.
    this.busy.get(worker)?.fail(new ExecError('module', `module preparation failed: the preparer ${kind === 'crashed' ? 'crashed' : 'was lost'} (${message})`));
    void worker.terminate(new ExecError('internal', message));
  }
}
