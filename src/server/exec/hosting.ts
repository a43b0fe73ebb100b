// How an executor's process hosts instances (in a worker process, or in
// the server's own thread): one engine whose memory pool bounds the live
// instances, a Hibernator that writes the persistent ones that wait to the
// data directory, and each instance as a HostedProgram, which an idle
// hibernation drops from memory altogether (docs/architecture.md,
// "Hibernation").

import { nodeEngine } from '../../host/engine.ts';
import { Hibernator, type HibernationStorage } from '../../host/hibernation.ts';
import { HostedProgram, type HostedProgramOptions } from '../../host/hosted-program.ts';
import type { ModuleCache } from '../../host/module-cache.ts';
import { ProgramInstance, type ProgramInstanceOptions } from '../../host/program-instance.ts';
import { restoreInstance } from '../../host/snapshot.ts';
import type { Engine, EngineOptions } from '../../runtime/instance/engine.ts';
import type { CompiledModule } from '../../runtime/instance/instance.ts';
import { MemoryPool, MemoryPoolFull } from '../../runtime/instance/memory-pool.ts';
import { poolFull } from './executor.ts';
import { HibernationFiles } from './hibernation-files.ts';

/** Milliseconds a new instance waits for a memory (while others hibernate) before the server is full. */
export const MEMORY_WAIT = 5000;

export interface HostingOptions {
  /** Live instances (holding a memory) at most: the memory pool's capacity. */
  memories: number;
  /** Named when the pool is full, e.g. `runtime.maxinstances = 15000`. */
  memoriesKey: string;
  /** Milliseconds a new instance waits for a memory before it is refused (default MEMORY_WAIT). */
  memoryWait?: number;
  /** Hibernate persistent instances that wait this long (0: only when the pool is full); snapshots go to moduleDir. */
  hibernation?: { moduleDir: string; idleMs: number };
  onSlice?: EngineOptions['onSlice'];
}

/** One instance to host: a new one, a snapshot to restore, or one dormant in its hibernation snapshot. */
export interface HostRequest {
  common: Omit<ProgramInstanceOptions, 'engine' | 'compiled' | 'hibernation' | 'restore' | 'continueWait'>;
  /** For a new instance (not a snapshot's or a dormant one's). */
  compiled: CompiledModule | undefined;
  snapshot: Uint8Array | null;
  dormant?: { checkpoint: string; wakeAt: number | null };
  /** It may hibernate (a persistent instance). */
  hibernate: boolean;
  cache: ModuleCache;
  maxMemoryPages: number;
  events: Pick<HostedProgramOptions, 'onHibernated' | 'onWoken' | 'onResident'>;
  /** Wraps work on the instance outside its slices (a worker reports whose it is). */
  working?: <T>(work: () => Promise<T>) => Promise<T>;
}

/** A zero system page to compare with (memcmp). */
const ZERO_PAGE = Buffer.alloc(4096);

/** Whether bytes are all zero (Node's memcmp: a memory given back to the pool is checked page by page). */
function isZero(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.byteLength === ZERO_PAGE.byteLength ? b.equals(ZERO_PAGE) : b.every((x) => x === 0);
}

const nowhere: HibernationStorage = {
  write: () => Promise.reject(new Error('hibernation has no storage')),
  read: () => Promise.reject(new Error('hibernation has no storage')),
  discard: () => {},
};

export class Hosting {
  readonly engine: Engine;
  readonly hibernator: Hibernator;
  private readonly storage: HibernationStorage | undefined;
  private readonly memoriesKey: string;
  private readonly memoryWait: number;

  constructor(options: HostingOptions) {
    this.memoryWait = options.memoryWait ?? MEMORY_WAIT;
    this.engine = nodeEngine({ onSlice: options.onSlice, memories: new MemoryPool({ capacity: options.memories, isZero }) });
    this.memoriesKey = options.memoriesKey;
    const h = options.hibernation;
    this.storage = h ? new HibernationFiles(h.moduleDir) : undefined;
    // Without storage nothing hibernates: a full pool then only waits for memories given back.
    this.hibernator = new Hibernator({ engine: this.engine, storage: this.storage ?? nowhere, idleMs: h && h.idleMs > 0 ? h.idleMs : Infinity });
  }

  /** Create, restore or revive an instance; throws ExecError busy (503 naming the key) when no memory is free in time. */
  async host(r: HostRequest): Promise<HostedProgram> {
    const working = r.working ?? ((work) => work());
    const hibernation = r.hibernate && this.storage ? this.hibernator : undefined;
    const options: HostedProgramOptions = {
      hibernator: this.hibernator,
      storage: this.storage ?? nowhere,
      drop: hibernation !== undefined,
      // A dropped instance waits as long as it takes for a memory: its run must not be lost to a busy moment.
      restore: (bytes, continueWait) =>
        this.withRoom(
          () =>
            working(() =>
              restoreInstance(bytes, { ...r.common, engine: this.engine, function: undefined, cache: r.cache, maxMemoryPages: r.maxMemoryPages, continueWait, hibernation }),
            ),
          Infinity,
        ),
      ...r.events,
    };
    if (r.dormant) {
      if (!this.storage) throw new Error('hibernated instances need a data directory');
      return new HostedProgram(options, { dormant: { name: r.dormant.checkpoint, wakeAt: r.dormant.wakeAt } });
    }
    const snapshot = r.snapshot;
    const program = await this.withRoom(() =>
      working(async () =>
        snapshot
          ? restoreInstance(snapshot, { ...r.common, engine: this.engine, cache: r.cache, maxMemoryPages: r.maxMemoryPages, hibernation })
          : new ProgramInstance({ ...r.common, engine: this.engine, compiled: r.compiled!, hibernation }),
      ),
    );
    return new HostedProgram(options, { program });
  }

  /** Make it once a memory is free (others hibernate for it); a pool that stays full is a full server. */
  private async withRoom<T>(make: () => Promise<T>, timeoutMs = this.memoryWait): Promise<T> {
    const pool = this.engine.memories;
    for (;;) {
      if (!(await pool.room(timeoutMs))) throw poolFull(this.memoriesKey);
      try {
        return await make();
      } catch (error) {
        if (!(error instanceof MemoryPoolFull)) throw error;
        // Another took the memory first: wait again.
      }
    }
  }
}
