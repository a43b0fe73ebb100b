// WebAssembly memories kept for reuse. V8 reserves about 8 GiB of address
// space for every memory (its guard regions), so a process holds at most
// about 16,000 of them, a new one costs ~100 µs (the reservation), and one
// that is dropped gives its reservation back only when the garbage collector
// finds it. A pool hands out memories up to its capacity and takes them back
// when an instance ends or hibernates: its capacity is the number of live
// instances a process can have, and creating a memory never fails on V8's
// limit instead of on ours.
//
// A memory cannot shrink, and a program must see exactly its initial size
// and its maximum, so memories are kept by maximum (the size classes: one per
// instance memory limit in practice) and one is reused for an instance whose
// initial size it does not exceed (grown to it). Contents are zeroed on
// reuse, unless the taker overwrites every byte (a restore).

import { InstanceError } from './errors.ts';

const PAGE = 65536;

export interface MemoryPoolOptions {
  /** Memories handed out and kept at most. */
  capacity: number;
}

export interface MemoryPoolStats {
  capacity: number;
  /** Memories handed out. */
  inUse: number;
  /** Memories kept for reuse. */
  idle: number;
  /** Takes served by a kept memory, and by a new one. */
  reused: number;
  created: number;
}

/** The pool is full: no memory for another live instance (a limit of the server, not the program's fault). */
export class MemoryPoolFull extends InstanceError {
  constructor(capacity: number) {
    super('ERR_MEMORY_POOL', `no memory left for another live instance (the pool holds ${capacity})`);
    this.name = 'MemoryPoolFull';
  }
}

export class MemoryPool {
  readonly capacity: number;
  /**
   * Called when the pool is full and a memory is wanted: the owner should
   * make room (hibernate instances that wait). Memories given back during
   * the call serve the take at once; later ones serve those waiting in room().
   */
  onFull: (() => void) | undefined;
  /** Idle memories by maximum ('' for none). */
  private readonly idle = new Map<string, WebAssembly.Memory[]>();
  private idleCount = 0;
  private inUse = 0;
  private reused = 0;
  private created = 0;
  /** The maximum of each memory made here (a Memory does not tell its own). */
  private readonly maxima = new WeakMap<WebAssembly.Memory, string>();
  private readonly handedOut = new WeakSet<WebAssembly.Memory>();
  /** A memory handed out and lost without release (its holder was collected) stops counting. */
  private readonly lost = new FinalizationRegistry<number>(() => {
    this.inUse--;
    this.roomMade();
  });
  private waiting: (() => void)[] = [];

  constructor(options: MemoryPoolOptions) {
    if (!(options.capacity >= 1)) throw new RangeError(`memory pool capacity must be at least 1: ${options.capacity}`);
    this.capacity = options.capacity;
  }

  get stats(): MemoryPoolStats {
    return { capacity: this.capacity, inUse: this.inUse, idle: this.idleCount, reused: this.reused, created: this.created };
  }

  /** Whether a take would succeed without the owner giving memories back. */
  get hasRoom(): boolean {
    return this.inUse < this.capacity;
  }

  /**
   * Resolves true when a take may succeed (another waiter may still get
   * there first: check hasRoom again), false when `timeoutMs` passed first.
   */
  room(timeoutMs = Infinity): Promise<boolean> {
    if (this.hasRoom) return Promise.resolve(true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const room = new Promise<boolean>((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiting.push(waiter);
      if (timeoutMs !== Infinity) {
        timer = setTimeout(() => {
          this.waiting = this.waiting.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs);
      }
    });
    this.onFull?.(); // counts this waiter
    return room;
  }

  /** Those who wait for room, how many. */
  get waiters(): number {
    return this.waiting.length;
  }

  private roomMade(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * A memory of `initial` pages with this maximum (null: none). Zeroed,
   * unless `zero` is false: then the caller must overwrite all of it.
   * Throws MemoryPoolFull.
   */
  take(initial: number, maximum: number | null, zero = true): WebAssembly.Memory {
    if (this.inUse >= this.capacity) {
      this.onFull?.();
      if (this.inUse >= this.capacity) throw new MemoryPoolFull(this.capacity);
    }
    const key = maximum === null ? '' : String(maximum);
    const memory = this.reuse(key, initial, zero) ?? this.create(key, initial, maximum);
    this.inUse++;
    this.handedOut.add(memory);
    this.lost.register(memory, 0, memory);
    return memory;
  }

  /** Give a memory back (it must not be used any more). Memories not from this pool are ignored. */
  give(memory: WebAssembly.Memory): void {
    if (!this.handedOut.has(memory)) return;
    this.handedOut.delete(memory);
    this.lost.unregister(memory);
    this.inUse--;
    this.roomMade();
    const key = this.maxima.get(memory)!;
    // Idle ones beyond what may be handed out would only hold address space.
    if (this.inUse + this.idleCount >= this.capacity) this.dropIdle();
    if (this.inUse + this.idleCount >= this.capacity) return;
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    list.push(memory);
    this.idleCount++;
  }

  /** The kept memory of this class that is largest without exceeding `initial`, grown to it. */
  private reuse(key: string, initial: number, zero: boolean): WebAssembly.Memory | undefined {
    const list = this.idle.get(key);
    if (!list) return undefined;
    let best = -1;
    let bestPages = -1;
    for (let i = 0; i < list.length; i++) {
      const pages = list[i].buffer.byteLength / PAGE;
      if (pages <= initial && pages > bestPages) {
        best = i;
        bestPages = pages;
        if (pages === initial) break;
      }
    }
    if (best < 0) return undefined;
    const memory = list[best];
    list[best] = list[list.length - 1];
    list.pop();
    this.idleCount--;
    // Pages added by growing are zero; the old ones held another instance's data.
    if (zero && bestPages > 0) new Uint8Array(memory.buffer, 0, bestPages * PAGE).fill(0);
    if (initial > bestPages) memory.grow(initial - bestPages);
    this.reused++;
    return memory;
  }

  private create(key: string, initial: number, maximum: number | null): WebAssembly.Memory {
    // Room for a new one: let an idle one of another class (or too big) go.
    if (this.inUse + this.idleCount >= this.capacity) this.dropIdle();
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory(maximum === null ? { initial } : { initial, maximum });
    } catch (error) {
      // V8 could not reserve it (address space, or memory): a full server, not an internal error.
      if (error instanceof RangeError) throw new MemoryPoolFull(this.capacity);
      throw error;
    }
    this.maxima.set(memory, key);
    this.created++;
    return memory;
  }

  /** Let the largest idle memory go. */
  private dropIdle(): void {
    let from: WebAssembly.Memory[] | undefined;
    let at = -1;
    let size = -1;
    for (const list of this.idle.values()) {
      list.forEach((m, i) => {
        if (m.buffer.byteLength > size) {
          size = m.buffer.byteLength;
          from = list;
          at = i;
        }
      });
    }
    if (!from) return;
    from[at] = from[from.length - 1];
    from.pop();
    this.idleCount--;
  }
}
