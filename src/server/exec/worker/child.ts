// What every child process of the server does alike (instance workers,
// preparers, shards): end when the server is gone, even when the
// main thread is held by a program; tell the server whose time slice it is
// in over a pipe of its own; and join BroadcastChannels across processes.

import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { SLICE_FD } from './protocol.ts';

/** Milliseconds between the guard thread's looks at whose slice the main thread is in. */
const SLICE_LOOK = 20;

/**
 * Start this process's guard thread: it kills the process once its parent
 * is gone, and tells the parent whose time slice the main thread is in.
 * A thread of its own, since the main thread may be held by a program that
 * cannot be interrupted.
 */
export function startGuard(): SliceReporter {
  const buffer = new SharedArrayBuffer(4);
  const reporter = new SliceReporter(buffer);
  new Worker(
    `const { writeSync } = require('node:fs');
     const { workerData } = require('node:worker_threads');
     const ppid = ${process.ppid};
     const slot = new Int32Array(workerData.buffer);
     const record = new Int32Array(1);
     let told = -1;
     setInterval(() => { if (process.ppid !== ppid) process.kill(${process.pid}, 'SIGKILL'); }, 500);
     setInterval(() => {
       const now = Atomics.load(slot, 0);
       if (now === told) return;
       told = now;
       record[0] = now;
       try { writeSync(${SLICE_FD}, new Uint8Array(record.buffer)); } catch {}
     }, ${SLICE_LOOK});`,
    { eval: true, workerData: { buffer } },
  ).unref();
  process.on('disconnect', () => process.exit(0));
  return reporter;
}

/**
 * Whose slice this process is in, told to the server over a pipe of its own
 * (SLICE_FD) by the guard thread, which reads it from memory the two
 * threads share: the main thread makes no system call per slice, and a
 * slice that never ends is told all the same (a message on the IPC channel
 * could sit in this process's queue behind it). Each record is an int32:
 * an instance id, or -1 (idle).
 */
export class SliceReporter {
  /** The id told last (undefined: idle). */
  reported: number | undefined;
  private readonly slot: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.slot = new Int32Array(buffer);
    Atomics.store(this.slot, 0, -1);
  }

  report(id: number | undefined): void {
    this.reported = id;
    Atomics.store(this.slot, 0, id ?? -1);
  }

  /** Report what the engine begins: a slice of instance `id` when it changes (unknown ones are not told), or idling. */
  onSlice(idle: boolean, id: number | undefined): void {
    if (id !== undefined && id !== this.reported) this.report(id);
    else if (idle && this.reported !== undefined) this.report(undefined);
  }

  /**
   * Work on one instance outside a slice (restoring it, capturing it) is
   * reported as its slice is: should the process die in it, that instance
   * is to blame (a table too big for the heap, say).
   */
  async working<T>(id: number, work: () => T | Promise<T>): Promise<T> {
    if (this.reported !== id) this.report(id);
    try {
      return await work();
    } finally {
      if (this.reported === id) this.report(undefined);
    }
  }
}

/** The server's side of SLICE_FD: `onRecord` gets the last whole record of each read (an id, or undefined for idle). */
export function readSliceRecords(pipe: Readable, onRecord: (id: number | undefined) => void): void {
  let rest: Buffer = Buffer.alloc(0);
  pipe.on('data', (chunk: Buffer) => {
    const bytes = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % 4);
    if (whole >= 4) {
      const id = bytes.readInt32LE(whole - 4);
      onRecord(id < 0 ? undefined : id);
    }
    rest = bytes.subarray(whole);
  });
  pipe.on('error', () => {
    // The process is gone: its exit is reported.
  });
}

/**
 * BroadcastChannels joined across processes: what this process's threads
 * post on one goes to `send` (the server posts it in the other processes),
 * and deliver() posts what the others sent.
 */
export class ChannelRelay {
  private readonly channels = new Map<string, BroadcastChannel>();

  constructor(names: readonly string[], send: (channel: string, data: unknown) => void) {
    for (const channel of names) {
      const bc = new BroadcastChannel(channel);
      bc.onmessage = (ev: MessageEvent) => send(channel, ev.data);
      (bc as unknown as { unref?: () => void }).unref?.();
      this.channels.set(channel, bc);
    }
  }

  deliver(channel: string, data: unknown): void {
    this.channels.get(channel)?.postMessage(data);
  }
}

/**
 * Test hook: stop answering for good, as a program V8 cannot interrupt
 * would (`heap`: fill the heap until V8 aborts).
 */
export function blockForever(how: 'loop' | 'heap'): never {
  if (how === 'heap') {
    const hog: unknown[] = [];
    for (;;) hog.push(new Array(1 << 20).fill(hog.length));
  }
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
