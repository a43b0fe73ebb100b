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
// initial size it does not exceed (grown to it). A memory given back is
// zeroed before it is kept, 4 KiB at a time and only where it is not zero
// already: a page the program never touched stays untouched (reading it
// does not make it resident), so a reused memory costs no more resident
// memory than a new one. Only small memories are kept (a few, and none
// larger than KEEP_MAX_BYTES): JavaScript cannot give pages back to the
// system, so a big one is better let go for the garbage collector to free.

import { InstanceError } from './errors.ts';

const PAGE = 65536;
/** Memories larger than this are not kept for reuse (zeroing them would take long, and their pages stay resident). */
export const KEEP_MAX_BYTES = 4 * 1024 * 1024;
/** Idle memories kept at most (each holds ~8 GiB of address space and its touched pages). */
export const KEEP_IDLE = 256;
/** Zeroing granularity: the system's page. */
const CHUNK_WORDS = 1024;

export interface MemoryPoolOptions {
  /** Memories handed out and kept at most. */
  capacity: number;
  /**
   * Whether these bytes (a system page) are all zero: the host's fastest
   * test (Node's memcmp is ten times the JavaScript loop), checked for every
   * page of every memory given back.
   */
  isZero?: (bytes: Uint8Array) => boolean;
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
  private readonly isZero: (bytes: Uint8Array) => boolean;

  constructor(options: MemoryPoolOptions) {
    if (!(options.capacity >= 1)) throw new RangeError(`memory pool capacity must be at least 1: ${options.capacity}`);
    this.capacity = options.capacity;
    this.isZero = options.isZero ?? zeroBytes;
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

  /** A zeroed memory of `initial` pages with this maximum (null: none). Throws MemoryPoolFull. */
  take(initial: number, maximum: number | null): WebAssembly.Memory {
    if (this.inUse >= this.capacity) {
      this.onFull?.();
      if (this.inUse >= this.capacity) throw new MemoryPoolFull(this.capacity);
    }
    const key = maximum === null ? '' : String(maximum);
    const memory = this.reuse(key, initial) ?? this.create(key, initial, maximum);
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
    // Idle ones beyond what may be handed out, or beyond a few, would only hold address space.
    if (this.idleCount >= KEEP_IDLE || memory.buffer.byteLength > KEEP_MAX_BYTES) return;
    if (this.inUse + this.idleCount >= this.capacity) this.dropIdle();
    if (this.inUse + this.idleCount >= this.capacity) return;
    zeroTouched(memory, this.isZero);
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    list.push(memory);
    this.idleCount++;
  }

  /** The kept memory of this class that is largest without exceeding `initial`, grown to it. */
  private reuse(key: string, initial: number): WebAssembly.Memory | undefined {
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
    // Zeroed when it was given back; pages added by growing are zero.
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

/** Zero what is not zero, a system page at a time, reading (not touching) the rest. */
function zeroTouched(memory: WebAssembly.Memory, isZero: (bytes: Uint8Array) => boolean): void {
  const bytes = new Uint8Array(memory.buffer);
  const chunk = CHUNK_WORDS * 4;
  for (let start = 0; start < bytes.byteLength; start += chunk) {
    const page = bytes.subarray(start, start + chunk);
    if (!isZero(page)) page.fill(0);
  }
}

/** Whether bytes are all zero, 8 at a time where they are aligned (twice the speed of 4). */
function zeroBytes(bytes: Uint8Array): boolean {
  if (bytes.byteOffset % 8 === 0 && bytes.byteLength % 8 === 0) {
    const longs = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
    for (let i = 0; i < longs.length; i++) if (longs[i] !== 0n) return false;
    return true;
  }
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Make a memory's contents equal `bytes` (of its size), touching only the
 * system pages that are not zero in one or the other: a page zero in both
 * stays untouched, not resident.
 */
export function fillMemory(memory: WebAssembly.Memory, bytes: Uint8Array): void {
  const dst = new Uint8Array(memory.buffer);
  const chunk = CHUNK_WORDS * 4;
  if (bytes.byteOffset % 4 !== 0 || bytes.byteLength % chunk !== 0 || bytes.byteLength !== dst.byteLength) {
    dst.set(bytes);
    return;
  }
  const src = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  const old = new Int32Array(memory.buffer);
  for (let start = 0; start < src.length; start += CHUNK_WORDS) {
    const end = start + CHUNK_WORDS;
    if (!zeroWords(src, start, end)) dst.set(bytes.subarray(start * 4, end * 4), start * 4);
    else if (!zeroWords(old, start, end)) old.fill(0, start, end);
  }
}

function zeroWords(words: Int32Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (words[i] !== 0) return false;
  return true;
}
