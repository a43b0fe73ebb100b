// The supervisor's handle on one shard process: its calls and notes (rpc.ts),
// the instance whose time slice it began last (to know whom to blame when
// it stops answering), when it last answered (for the watchdog), and its
// resident memory.

import { fork, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { readSliceRecords } from '../exec/worker/child.ts';
import { residentBytes, type LossKind } from '../exec/worker/process.ts';
import { SLICE_FD } from '../exec/worker/protocol.ts';
import { Rpc, type Message, type RpcHandlers } from './rpc.ts';
import type { ShardSetup } from './protocol.ts';

const ENTRY = new URL('./shard.ts', import.meta.url);

export interface ShardEvents extends RpcHandlers {
  /** The process failed or exited without being asked to. */
  failed(shard: ShardProcess, kind: LossKind, message: string): void;
}

export class ShardProcess {
  readonly index: number;
  readonly rpc: Rpc;
  /** Listening on the public address, on this port. */
  port: number | undefined;
  /** Serving requests (its instances are loaded). */
  serving = false;
  /** performance.now() of the last message from the shard (or of its start). */
  lastAnswer: number;
  /** The instance slot whose time slice the shard said it began last (until it says it idles). */
  current: number | undefined;
  gone = false;
  /** Told to shut down: its exit is expected. */
  stopping = false;
  /** Settles when the process has exited. */
  readonly exited: Promise<void>;
  /** Settles with the port when the shard listens; rejects when it exits first. */
  readonly ready: Promise<number>;
  private readonly child: ChildProcess;
  private pingSeq = 0;

  constructor(setup: ShardSetup, events: ShardEvents, heapMiB?: number) {
    this.index = setup.index;
    this.lastAnswer = performance.now();
    this.child = fork(ENTRY, [`gate-shard-${setup.index}`], {
      serialization: 'advanced',
      execArgv: heapMiB ? [`--max-old-space-size=${heapMiB}`] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
    });
    readSliceRecords(this.child.stdio[SLICE_FD] as Readable, (slot) => {
      this.lastAnswer = performance.now();
      this.current = slot;
    });
    this.rpc = new Rpc((m) => this.send(m), {
      call: (kind, body) => events.call(kind, body),
      note: (kind, body) => {
        if (kind === 'ready') {
          this.port = (body as { port: number }).port;
          markReady(this.port);
        } else if (kind !== 'pong') {
          events.note(kind, body);
        }
      },
    });
    let markReady!: (port: number) => void;
    let notReady!: (error: Error) => void;
    this.ready = new Promise<number>((resolve, reject) => {
      markReady = resolve;
      notReady = reject;
    });
    this.ready.catch(() => {});
    this.exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: Message) => {
      this.lastAnswer = performance.now();
      this.rpc.receive(m);
    });
    this.child.on('error', (error: Error) => {
      if (!this.gone) events.failed(this, 'crashed', `worker ${this.index} failed: ${error.message}`);
    });
    this.child.on('exit', (code, signal) => {
      notReady(new Error(`worker ${this.index} exited before it listened (${signal ?? `code ${code}`})`));
      this.rpc.close(new Error(`worker ${this.index} is gone`));
      if (this.gone || this.stopping) return;
      // V8 aborts the process when its heap is full.
      if (signal === 'SIGABRT') events.failed(this, 'heap', `worker ${this.index} ran out of heap`);
      else events.failed(this, 'crashed', `worker ${this.index} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
    });
    this.rpc.note('setup', setup);
  }

  /** The process's exit code or signal once it has exited. */
  get exitCode(): number | string | undefined {
    return this.child.exitCode ?? this.child.signalCode ?? undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resident memory in bytes, when the platform tells. */
  rss(): number | undefined {
    return residentBytes(this.child.pid);
  }

  ping(): void {
    this.rpc.note('ping', { seq: ++this.pingSeq });
  }

  /** Kill the process (calls under way fail). */
  kill(): Promise<void> {
    this.gone = true;
    this.rpc.close(new Error(`worker ${this.index} is gone`));
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }

  private send(m: Message): void {
    if (this.gone || !this.child.connected) return;
    this.child.send(m, (error: Error | null) => {
      // The channel closed under us: the exit handler reports the loss.
      void error;
    });
  }
}
