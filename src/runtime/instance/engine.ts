// One engine per thread: it runs its instances as green threads. An instance
// runs for a time slice, then its stack is taken down so that the event loop
// can deliver I/O and other instances get their turn. All instances share one
// place to take stacks down into (the stack module): only the running one
// uses it, and a saved stack is copied out to the instance.

import { MemoryPool } from './memory-pool.ts';
import { instantiateStackModule, type StackModuleExports } from './stack-module.ts';

export interface EngineOptions {
  /** Length of a time slice in milliseconds. */
  sliceMs?: number;
  /** Run fn soon, after pending I/O (a macrotask). */
  schedule?: (fn: () => void) => void;
  /** Milliseconds on a monotonic clock. */
  now?: () => number;
  /**
   * Called before each slice with what is about to run, and with undefined
   * when no slice follows (a host reports it, to know whom to blame should
   * a slice never end).
   */
  onSlice?: (r: Runnable | undefined) => void;
  /** Where instances take their memories (default: a pool of DEFAULT_MEMORIES). */
  memories?: MemoryPool;
}

/** Something the engine can run a slice of. */
export interface Runnable {
  /** Run until the slice ends at `deadline` (engine clock) or the program stops or waits. */
  step(deadline: number): void;
}

const DEFAULT_SLICE_MS = 5;
/** Live instances per engine by default: below V8's ~16,000 memories per process. */
export const DEFAULT_MEMORIES = 15_000;

function defaultSchedule(): (fn: () => void) => void {
  // MessageChannel gives a macrotask without setTimeout's clamping in browsers.
  if (typeof MessageChannel !== 'undefined') {
    const queue: (() => void)[] = [];
    const channel = new MessageChannel();
    channel.port1.onmessage = () => queue.shift()?.();
    return (fn) => {
      queue.push(fn);
      channel.port2.postMessage(null);
    };
  }
  return (fn) => setTimeout(fn, 0);
}

export class Engine {
  private stacks: StackModuleExports | undefined;
  readonly now: () => number;
  private readonly sliceMs: number;
  private readonly schedule: (fn: () => void) => void;
  private readonly onSlice: ((r: Runnable | undefined) => void) | undefined;
  private readonly runQueue: Runnable[] = [];
  private scheduled = false;
  /** The memories of this engine's instances: its capacity is the number of live instances. */
  readonly memories: MemoryPool;

  constructor(options: EngineOptions = {}) {
    this.memories = options.memories ?? new MemoryPool({ capacity: DEFAULT_MEMORIES });
    this.sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
    this.schedule = options.schedule ?? defaultSchedule();
    this.now = options.now ?? (() => performance.now());
    this.onSlice = options.onSlice;
  }

  /** The stack module shared by this engine's instances prepared by our rewrite (made on first use). */
  get stackModule(): StackModuleExports {
    this.stacks ??= instantiateStackModule();
    return this.stacks;
  }

  /** Number of instances waiting for a slice. */
  get runnable(): number {
    return this.runQueue.length;
  }

  /** Queue an instance for a slice. */
  enqueue(r: Runnable): void {
    this.runQueue.push(r);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.runNext());
    }
  }

  /** Remove a queued instance (it was suspended or killed while waiting for its turn). */
  dequeue(r: Runnable): void {
    const i = this.runQueue.indexOf(r);
    if (i >= 0) this.runQueue.splice(i, 1);
  }

  private runNext(): void {
    this.scheduled = false;
    const r = this.runQueue.shift();
    if (r) {
      this.onSlice?.(r);
      r.step(this.now() + this.sliceMs);
      if (this.runQueue.length === 0) this.onSlice?.(undefined);
    }
    if (this.runQueue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.runNext());
    }
  }
}
