// The main thread's handle on one worker thread: requests and their answers,
// the instances placed on it, the compiled programs it already holds, and
// when it last answered (for the watchdog).

import { Worker, type TransferListItem } from 'node:worker_threads';
import { ExecError } from '../executor.ts';
import type { FromWorker, ToWorker, WorkerSetup } from './protocol.ts';
import type { RemoteInstance } from './remote-instance.ts';

const ENTRY = new URL('./entry.ts', import.meta.url);

/** Why a worker is gone. */
export type LossKind = 'stuck' | 'crashed' | 'closed';

export interface ThreadHandlers {
  /** Any message that is not a reply (instance events). */
  event(thread: WorkerThread, m: FromWorker): void;
  /** The thread failed or exited without being asked to. */
  failed(thread: WorkerThread, kind: LossKind, message: string): void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class WorkerThread {
  readonly id: number;
  readonly role: WorkerSetup['role'];
  readonly instances = new Map<number, RemoteInstance>();
  /** Program keys whose compiled module this thread already has. */
  readonly shares = new Set<string>();
  /** Creates on their way to this thread (counted for placement). */
  reserved = 0;
  /** Sum of the memory limits of its instances, in bytes. */
  memory = 0;
  ready = false;
  /** performance.now() of the last message from the thread (or of its start). */
  lastAnswer: number;
  /** Stopped answering heartbeats; being replaced. */
  stuck = false;
  gone = false;
  /** Settles when the thread has been terminated. */
  exited: Promise<void> = Promise.resolve();

  private readonly worker: Worker;
  private readonly handlers: ThreadHandlers;
  private readonly block: SharedArrayBuffer | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private pingSeq = 0;

  constructor(id: number, setup: WorkerSetup, handlers: ThreadHandlers) {
    this.id = id;
    this.role = setup.role;
    this.handlers = handlers;
    this.block = setup.testBlock;
    this.lastAnswer = performance.now();
    this.worker = new Worker(ENTRY, { workerData: setup, name: `gate-${setup.role}-${id}` });
    this.worker.on('message', (m: FromWorker) => this.receive(m));
    this.worker.on('error', (err: Error) => {
      if (!this.gone) handlers.failed(this, 'crashed', `worker ${id} failed: ${err.message}`);
    });
    this.worker.on('exit', (code: number) => {
      if (!this.gone) handlers.failed(this, 'crashed', `worker ${id} exited with code ${code}`);
    });
  }

  /** Load for placement: instances and creates under way. */
  get load(): number {
    return this.instances.size + this.reserved;
  }

  post(m: ToWorker, transfer?: TransferListItem[]): void {
    if (this.gone) return;
    this.worker.postMessage(m, transfer);
  }

  /** Send a request and wait for its answer; rejects with ExecError (a failure in the worker, or the worker lost). */
  request<T>(build: (req: number) => ToWorker, transfer?: TransferListItem[]): Promise<T> {
    if (this.gone) return Promise.reject(new ExecError('internal', `worker ${this.id} is gone`));
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage(build(req), transfer);
    });
  }

  ping(): void {
    this.post({ op: 'ping', seq: ++this.pingSeq });
  }

  /** Test hook: make the thread stop answering (see WorkerExecutorOptions.testHooks). */
  blockForTest(): void {
    if (!this.block) throw new Error('ERR_TEST_HOOKS_DISABLED: worker blocking is a test hook; set testHooks');
    this.post({ op: 'block' });
  }

  /** Stop the thread: pending requests fail with error. */
  terminate(error: Error): Promise<void> {
    if (this.gone) return this.exited;
    this.gone = true;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
    this.exited = this.worker.terminate().then(
      () => {},
      () => {},
    );
    // A thread held in the test hook's wait is released too (termination alone also ends it).
    if (this.block) {
      const cell = new Int32Array(this.block);
      Atomics.store(cell, 0, 1);
      Atomics.notify(cell, 0);
    }
    return this.exited;
  }

  private receive(m: FromWorker): void {
    this.lastAnswer = performance.now();
    switch (m.ev) {
      case 'ready':
        this.ready = true;
        return;
      case 'pong':
        return;
      case 'reply':
      case 'fail': {
        const p = this.pending.get(m.req);
        if (!p) return;
        this.pending.delete(m.req);
        if (m.ev === 'reply') p.resolve(m.value);
        else p.reject(new ExecError(m.error.kind, m.error.message));
        return;
      }
      default:
        this.handlers.event(this, m);
    }
  }
}
