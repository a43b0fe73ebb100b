// A shard's executor: instances on the shard's own engine, as in a server
// of one process (InProcessExecutor), but never prepared here. A module the
// shard has not compiled yet goes to the supervisor's preparer processes
// (deadline, memory cap, fairness between owners: exec/worker/preparers.ts)
// and comes back prepared; the shard only compiles it (V8 compiles in the
// background), so nothing slow runs on the process that serves HTTP. The
// programs compiled here are bounded: the least recently used go. Each
// instance is numbered for the watchdog, which blames the one in whose slice
// a shard stopped answering.

import { ModuleCache } from '../../host/module-cache.ts';
import { ExecError, InProcessExecutor, type CreateOptions, type ExecInstance, type InProcessOptions, type ProgramFacts } from '../exec/executor.ts';
import type { SliceReporter } from '../exec/worker/child.ts';
import type { PrepareReply } from '../exec/worker/protocol.ts';
import type { Runnable } from '../../runtime/instance/engine.ts';
import type { PreparedModule } from '../../runtime/prepare/prepared.ts';
import type { PrepareOptions } from '../../runtime/prepare/prepare.ts';
import { RecentMap } from '../util/recent-map.ts';

/** Ask the supervisor to prepare a module (or a snapshot's program) for `owner`. */
export type RemotePrepare = (bytes: Uint8Array, maxMemoryPages: number, owner: string) => Promise<PrepareReply>;

/** Programs kept compiled here (each compiled module holds its code); older ones are prepared again (a disk cache hit). */
const PROGRAMS_KEPT = 256;

/** A module cache that never prepares here: what it lacks comes prepared from the supervisor. */
class RemoteModuleCache extends ModuleCache {
  private readonly remote: RemotePrepare;

  constructor(remote: RemotePrepare) {
    super(null);
    this.remote = remote;
  }

  protected override async load(_hash: string, bytes: Uint8Array, options: PrepareOptions): Promise<PreparedModule> {
    return (await this.remote(bytes, options.maxMemoryPages ?? 0, '')).share.prepared;
  }
}

export interface ShardExecutorOptions extends Omit<InProcessOptions, 'cache' | 'cacheDir' | 'onSlice'> {
  prepare: RemotePrepare;
  /** The shard's number (its worker id in metrics). */
  index: number;
  /** Where the shard tells its watchdog whose slice it is in. */
  slice: SliceReporter;
}

export class ShardExecutor extends InProcessExecutor {
  private readonly remote: RemotePrepare;
  /** Facts of the programs compiled here, by `hash:pages`; when one goes, its compiled module goes too. */
  private readonly facts = new RecentMap<string, Promise<{ facts: ProgramFacts; program: Uint8Array; pages: number }>>(PROGRAMS_KEPT);
  /** Instances numbered for the watchdog (the slice reports), by their runnable (which a hibernation may replace) and by themselves. */
  private readonly slots: WeakMap<Runnable, number>;
  private readonly execSlots = new WeakMap<ExecInstance, number>();
  private nextSlot = 1;
  private readonly index: number;
  private readonly slice: SliceReporter;

  constructor(options: ShardExecutorOptions) {
    const remote = options.prepare;
    const slots = new WeakMap<Runnable, number>();
    const slice = options.slice;
    super({
      ...options,
      cacheDir: null,
      cache: new RemoteModuleCache(remote),
      onSlice: (r) => slice.onSlice(r === undefined, r === undefined ? undefined : slots.get(r)),
    });
    this.slots = slots;
    this.slice = slice;
    this.remote = remote;
    this.index = options.index;
  }

  override workers(): { id: number; instances: number; stuck: boolean; hibernated: number }[] {
    return super.workers().map((w) => ({ ...w, id: this.index }));
  }

  override async prepare(bytes: Uint8Array, hash: string, maxMemoryPages: number, owner = ''): Promise<ProgramFacts> {
    const id = `${hash}:${maxMemoryPages}`;
    let entry = this.facts.get(id);
    if (!entry) {
      entry = this.fetch(bytes, maxMemoryPages, owner);
      this.setFacts(id, entry);
      entry.then(
        // Snapshots are a new module at every checkpoint: only their programs are kept.
        (e) => {
          if (e.facts.snapshot) this.facts.delete(id);
        },
        (error: unknown) => {
          // A module that was refused stays refused; anything else may be tried again.
          if (!(error instanceof ExecError && error.kind === 'module')) this.facts.delete(id);
        },
      );
    }
    return (await entry).facts;
  }

  override async create(options: CreateOptions): Promise<ExecInstance> {
    await this.prepare(options.bytes, options.hash, options.maxMemoryPages, options.owner);
    const slot = this.nextSlot++;
    const exec = await super.create(options, {
      resident: (runnable) => this.slots.set(runnable, slot),
      working: (work) => this.slice.working(slot, work),
    });
    this.execSlots.set(exec, slot);
    return exec;
  }

  /** The watchdog's number of an instance of this executor. */
  slotOfInstance(exec: ExecInstance | undefined): number | undefined {
    return exec === undefined ? undefined : this.execSlots.get(exec);
  }

  private setFacts(id: string, entry: Promise<{ facts: ProgramFacts; program: Uint8Array; pages: number }>): void {
    // The oldest entry going out lets its compiled program go (instances keep what they use).
    const oldest = this.facts.size >= this.facts.capacity ? this.facts.keys().next().value : undefined;
    if (oldest !== undefined && oldest !== id) {
      void this.facts.get(oldest)?.then((e) => this.cache.drop(e.program, { maxMemoryPages: e.pages }), () => {});
      this.facts.delete(oldest);
    }
    this.facts.set(id, entry);
  }

  /** Prepared by the supervisor, compiled here, and offered to the module cache. */
  private async fetch(bytes: Uint8Array, pages: number, owner: string): Promise<{ facts: ProgramFacts; program: Uint8Array; pages: number }> {
    const reply = await this.remote(bytes, pages, owner);
    const { prepared, program } = reply.share;
    const module = await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>);
    this.cache.seed({ prepared, module, program }, { maxMemoryPages: pages });
    return { facts: reply.facts, program, pages };
  }
}
