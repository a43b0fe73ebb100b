// The server's handle on one worker process: requests and their answers, the
// instances placed on it, the programs it already holds, the instance whose
// time slice it last began (to know whom to blame when it stops answering),
// when it last answered (for the watchdog), and its resident memory.
//
// A process, not a thread: a thread that V8 cannot interrupt can neither be
// terminated nor let the process exit (process.exit joins it), while a
// process always dies of SIGKILL and its memory goes with it.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ExecError } from '../executor.ts';
import { readSliceRecords } from './child.ts';
import { PortHub } from './ports.ts';
import { SLICE_FD, type FromWorker, type ToWorker, type WorkerSetup } from './protocol.ts';
import type { RemoteInstance } from './remote-instance.ts';

const ENTRY = new URL('./entry.ts', import.meta.url);

/** Why a worker is gone: stopped answering, died, passed its memory cap, or ran out of heap (V8 aborts). */
export type LossKind = 'stuck' | 'crashed' | 'memory' | 'heap' | 'closed';

export interface ProcessHandlers {
  /** Any message that is not a reply (instance events). */
  event(worker: WorkerProcess, m: FromWorker): void;
  /** The process failed or exited without being asked to. */
  failed(worker: WorkerProcess, kind: LossKind, message: string): void;
}

export interface WorkerProcessOptions {
  /** V8 heap limit of the process (--max-old-space-size), in MiB. */
  heapMiB?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** The instance the request is about, when it could be the one to blame for a loss. */
  instance?: number;
}

const PAGE_SIZE = 4096;

/** Resident memory of a process in bytes (Linux), or undefined where /proc is not available. */
export function residentBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ');
    return Number(fields[1]) * PAGE_SIZE;
  } catch {
    return undefined;
  }
}

export class WorkerProcess {
  readonly id: number;
  readonly role: WorkerSetup['role'];
  readonly instances = new Map<number, RemoteInstance>();
  /** Programs this worker holds compiled, by key, with the number of its instances using each (oldest use first). */
  readonly shares = new Map<string, number>();
  readonly ports: PortHub;
  /** Creates on their way to this worker (counted for placement). */
  reserved = 0;
  /** Sum of the memory limits of its instances, in bytes. */
  memory = 0;
  /** V8 heap its instances' tables take (and creates under way may take), in bytes. */
  heap = 0;
  ready = false;
  /** performance.now() of the last message from the worker (or of its start). */
  lastAnswer: number;
  /** Stopped answering heartbeats; being replaced. */
  stuck = false;
  gone = false;
  /** The instance whose time slice the worker said it began last (until it says it idles): it may still be in it. */
  current: number | undefined;
  /** Settles when the process has exited. */
  readonly exited: Promise<void>;
  /** Settles when the process has started (its setup done), or has exited. */
  readonly started: Promise<void>;
  private markStarted!: () => void;

  private readonly child: ChildProcess;
  private readonly handlers: ProcessHandlers;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private pingSeq = 0;

  constructor(id: number, setup: WorkerSetup, handlers: ProcessHandlers, options: WorkerProcessOptions = {}) {
    this.id = id;
    this.role = setup.role;
    this.handlers = handlers;
    this.lastAnswer = performance.now();
    const execArgv = options.heapMiB ? [`--max-old-space-size=${options.heapMiB}`] : [];
    this.child = fork(ENTRY, [`gate-${setup.role}-${id}`], {
      serialization: 'advanced',
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
    });
    readSliceRecords(this.child.stdio[SLICE_FD] as Readable, (id) => {
      this.lastAnswer = performance.now();
      this.current = id;
    });
    this.ports = new PortHub((envelope) => this.post({ op: 'port', ...envelope }));
    this.exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.started = new Promise<void>((resolve) => (this.markStarted = resolve));
    void this.exited.then(() => this.markStarted());
    this.child.on('message', (m: FromWorker) => this.receive(m));
    this.child.on('error', (err: Error) => {
      if (!this.gone) handlers.failed(this, 'crashed', `worker ${id} failed: ${err.message}`);
    });
    this.child.on('exit', (code, signal) => {
      if (this.gone) return;
      // V8 aborts the process when its heap is full.
      if (signal === 'SIGABRT') handlers.failed(this, 'heap', `worker ${id} ran out of heap`);
      else handlers.failed(this, 'crashed', `worker ${id} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
    });
    this.post({ op: 'setup', setup });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resident memory in bytes, when the platform tells. */
  rss(): number | undefined {
    return residentBytes(this.child.pid);
  }

  /** Load for placement: instances and creates under way. */
  get load(): number {
    return this.instances.size + this.reserved;
  }

  post(m: ToWorker): void {
    if (this.gone || !this.child.connected) return;
    this.child.send(m, (error: Error | null) => {
      // The channel closed under us: the exit handler reports the loss.
      void error;
    });
  }

  /**
   * Send a request and wait for its answer; rejects with ExecError (a
   * failure in the worker, or the worker lost). `instance`: the request is
   * about that instance (see terminate).
   */
  request<T>(build: (req: number) => ToWorker, instance?: number): Promise<T> {
    if (this.gone) return Promise.reject(new ExecError('internal', `worker ${this.id} is gone`));
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (value: unknown) => void, reject, instance });
      this.post(build(req));
    });
  }

  ping(): void {
    this.post({ op: 'ping', seq: ++this.pingSeq });
  }

  /** Test hook: make the worker stop answering for good (or run out of heap), in the middle of instance `id`'s slice if given. */
  blockForTest(id?: number, how: 'loop' | 'heap' = 'loop'): void {
    this.post({ op: 'block', id, how });
  }

  /** Kill the process: pending requests fail with error (those about the blamed instance with its own). */
  terminate(error: Error, blame?: { instance: number; error: Error }): Promise<void> {
    if (this.gone) return this.exited;
    this.gone = true;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(blame && p.instance === blame.instance ? blame.error : error);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }

  private receive(m: FromWorker): void {
    this.lastAnswer = performance.now();
    switch (m.ev) {
      case 'ready':
        this.ready = true;
        this.markStarted();
        return;
      case 'pong':
        return;
      case 'port':
        this.ports.deliver(m);
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
