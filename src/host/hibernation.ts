// Hibernation: an instance whose run has waited (for input, a service's
// reply, a connection or a timer) longer than a set time is written to
// storage as a snapshot and its memory goes back to the engine's pool; the
// event that ends its wait loads it back and it goes on, none the wiser
// (Instance.captureWaiting, evict, materialize). Its services stay up
// meanwhile, so any of them can wake it. When the pool is full, those that
// have waited longest hibernate at once, so that the pool's capacity bounds
// the live instances, not all of them.
//
// Nothing here is bound to Node: where the snapshots go is the storage's
// business (files in a server's data directory).

import type { Engine } from '../runtime/instance/engine.ts';
import { readSnapshot } from '../runtime/snapshot/read.ts';
import type { InstanceState } from '../runtime/snapshot/state.ts';
import type { Hibernation, ProgramInstance } from './program-instance.ts';
import { snapshotWaiting } from './snapshot.ts';

/** Where hibernated instances' snapshots are kept. */
export interface HibernationStorage {
  /** Keep a snapshot; resolves with its name once it is durable. */
  write(bytes: Uint8Array): Promise<string>;
  read(name: string): Promise<Uint8Array>;
  /** A snapshot written for nothing (the instance woke first). */
  discard(name: string): void;
}

/** What an owner learns when one of its instances hibernates. */
export interface Hibernated {
  /** The snapshot's name in the storage. */
  name: string;
  size: number;
  /** No service has anything under way: the instance may be dropped and restored from the snapshot when needed (continueWait). */
  idle: boolean;
  /** When its timer ends the wait (Date.now() milliseconds), if it has one. */
  wakeAt: number | null;
  /** Its run waits in the snapshot (a hibernation); false: a stopped instance was stored (HostedProgram). */
  waiting: boolean;
}

/** A stopped instance in memory that can give its memory back (HostedProgram). */
export interface Resting {
  /** Store it and let it go; false when it cannot (any more). */
  giveBack(): Promise<boolean>;
}

/** Who hears of one instance's hibernations (HostedProgram). */
export interface HibernationListener {
  hibernated(h: Hibernated): void;
  woken(): void;
}

export interface HibernatorOptions {
  engine: Engine;
  storage: HibernationStorage;
  /** Milliseconds an instance waits before it hibernates (Infinity: only when the pool is full). */
  idleMs: number;
  /** One of the instances hibernated. */
  hibernated?: (p: ProgramInstance, h: Hibernated) => void;
  /** A hibernated instance has its body back (its wait ended, or it is wanted). */
  woken?: (p: ProgramInstance) => void;
  /** Milliseconds on a monotonic clock (default performance.now). */
  now?: () => number;
}

/** Snapshots written at once at most: each holds a copy of an instance's memory. */
const CONCURRENT = 8;

export class Hibernator implements Hibernation {
  private readonly engine: Engine;
  private readonly storage: HibernationStorage;
  private readonly idleMs: number;
  private readonly options: HibernatorOptions;
  private readonly now: () => number;
  /** Instances whose run waits, by when it began (oldest first: a wait that begins is added last). */
  private readonly waits = new Map<ProgramInstance, number>();
  /** Stopped instances in memory, by when they stopped. */
  private readonly rests = new Map<Resting, number>();
  /** Being written. */
  private readonly writing = new Set<ProgramInstance | Resting>();
  private readonly listeners = new WeakMap<ProgramInstance, HibernationListener>();
  /** Hibernated, their bodies in storage. */
  private readonly stored = new WeakSet<ProgramInstance>();
  /** Hibernated when the host began to close: they stay so. */
  private readonly frozen = new WeakSet<ProgramInstance>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  /** The host is closing: nothing hibernates any more. */
  private stopped = false;
  private count = { hibernated: 0, woken: 0 };

  constructor(options: HibernatorOptions) {
    this.options = options;
    this.engine = options.engine;
    this.storage = options.storage;
    this.idleMs = options.idleMs;
    this.now = options.now ?? (() => performance.now());
    this.engine.memories.onFull = () => this.makeRoom();
  }

  /** Hibernations and wakes so far. */
  get stats(): { hibernated: number; woken: number; waiting: number; resting: number; writing: number } {
    return { ...this.count, waiting: this.waits.size, resting: this.rests.size, writing: this.writing.size };
  }

  waiting(p: ProgramInstance, waiting: boolean): void {
    this.note(this.waits, p, waiting);
  }

  /** A stopped instance in memory that may give it back (true), or one that no longer can (false). */
  resting(r: Resting, resting: boolean): void {
    this.note(this.rests, r, resting);
  }

  /** x begins (true) or ends (false) to be a candidate of this queue. */
  private note<T>(queue: Map<T, number>, x: T, candidate: boolean): void {
    queue.delete(x);
    if (!candidate) return;
    queue.set(x, this.now());
    // Someone waits for a memory: this one may give it.
    if (this.engine.memories.waiters > 0) this.sweep();
    else this.schedule();
  }

  forget(p: ProgramInstance): void {
    this.waits.delete(p);
    this.stored.delete(p);
  }

  /** Tell `listener` of p's hibernations and wakes. */
  listen(p: ProgramInstance, listener: HibernationListener): void {
    this.listeners.set(p, listener);
  }

  /** The host is closing: no instance hibernates any more (those that have stay so: see freeze). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * The host is closing: if p is hibernated (its body in storage), nothing
   * will load it back any more, and true is returned (its snapshot holds it).
   */
  freeze(p: ProgramInstance): boolean {
    if (!this.stored.has(p)) return false;
    this.frozen.add(p);
    return true;
  }

  /** The pool is full: those that have waited longest go now, one for each taker waiting (see sweep). */
  private makeRoom(): void {
    this.sweep();
  }

  private schedule(): void {
    if (this.stopped || this.idleMs === Infinity || (this.waits.size === 0 && this.rests.size === 0)) return;
    const [waited] = this.waits.values();
    const [rested] = this.rests.values();
    const at = Math.min(waited ?? Infinity, rested ?? Infinity) + this.idleMs;
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.sweep();
    }, Math.max(0, at - this.now()));
    (this.timer as { unref?: () => void }).unref?.();
  }

  /**
   * Hibernate those that have waited long enough, a few at a time, and
   * before their time as many as wait for a memory (less those being
   * written, each of which will give one back).
   */
  private sweep(): void {
    if (this.stopped) return;
    const now = this.now();
    const budget = { urgent: this.engine.memories.waiters - this.writing.size };
    // Waiting runs first (they hibernate), then stopped instances (they are stored).
    this.sweepQueue(this.waits, (p) => this.hibernate(p), now, budget);
    this.sweepQueue(this.rests, (r) => r.giveBack(), now, budget);
    this.schedule();
  }

  private sweepQueue<T extends ProgramInstance | Resting>(queue: Map<T, number>, go: (x: T) => Promise<unknown>, now: number, budget: { urgent: number }): void {
    for (const [x, since] of queue) {
      if (this.writing.size >= CONCURRENT) return;
      if (this.writing.has(x)) continue;
      if (budget.urgent <= 0 && now - since < this.idleMs) return;
      budget.urgent--;
      queue.delete(x);
      this.writing.add(x);
      void go(x)
        .catch(() => {})
        .finally(() => {
          this.writing.delete(x);
          this.sweep();
        });
    }
  }

  /**
   * Hibernate an instance now if its run waits (whatever the time). Null
   * when it does not wait, a service cannot be saved, or it woke before
   * its snapshot was written.
   */
  async hibernate(p: ProgramInstance): Promise<Hibernated | null> {
    if (this.stopped) return null;
    let snapshot: Awaited<ReturnType<typeof snapshotWaiting>>;
    try {
      snapshot = await snapshotWaiting(p);
    } catch {
      return null; // a state that cannot be written (a reference on its stack): it stays live
    }
    if (!snapshot) return null;
    let name: string;
    try {
      name = await this.storage.write(snapshot.bytes);
    } catch {
      return null; // storage failing only costs memory
    }
    const load = async (): Promise<InstanceState> => {
      if (this.frozen.has(p)) return new Promise<InstanceState>(() => {}); // the host is closing
      this.stored.delete(p);
      this.count.woken++;
      this.options.woken?.(p);
      this.listeners.get(p)?.woken();
      return (await readSnapshot(await this.storage.read(name))).state;
    };
    if (!p.instance.evict(snapshot.wait, load)) {
      this.storage.discard(name); // it woke while being written
      return null;
    }
    this.waits.delete(p);
    this.stored.add(p);
    this.count.hibernated++;
    const wakeAt = snapshot.wakeAfter === null ? null : Date.now() + Number(snapshot.wakeAfter / 1_000_000n);
    const h: Hibernated = { name, size: snapshot.bytes.byteLength, idle: snapshot.idle, wakeAt, waiting: true };
    this.options.hibernated?.(p, h);
    this.listeners.get(p)?.hibernated(h);
    return h;
  }
}
