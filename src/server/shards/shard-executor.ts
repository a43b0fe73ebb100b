// A shard's executor: instances on the shard's own engine, as in a server
// of one process (InProcessExecutor), but never prepared here. A module the
// shard has not compiled yet goes to the supervisor's preparer processes
// (deadline, memory cap, fairness between owners: exec/worker/preparers.ts)
// and comes back prepared; the shard only compiles it (V8 compiles in the
// background), so nothing slow runs on the process that serves HTTP. The
// programs compiled here are bounded: the least recently used go.

import { ModuleCache } from '../../host/module-cache.ts';
import { ExecError, InProcessExecutor, LocalInstance, type CreateOptions, type ExecInstance, type InProcessOptions, type ProgramFacts } from '../exec/executor.ts';
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

export interface ShardExecutorOptions extends Omit<InProcessOptions, 'cache' | 'cacheDir'> {
  prepare: RemotePrepare;
  /** The shard's number (its worker id in metrics). */
  index: number;
}

export class ShardExecutor extends InProcessExecutor {
  private readonly remote: RemotePrepare;
  /** Facts of the programs compiled here, by `hash:pages`; when one goes, its compiled module goes too. */
  private readonly facts = new RecentMap<string, Promise<{ facts: ProgramFacts; program: Uint8Array; pages: number }>>(PROGRAMS_KEPT);
  /** Instances by their runnable, numbered for the watchdog (the slice reports). */
  private readonly slots = new Map<Runnable, number>();
  private nextSlot = 1;
  private readonly index: number;

  constructor(options: ShardExecutorOptions) {
    const remote = options.prepare;
    super({ ...options, cacheDir: null, cache: new RemoteModuleCache(remote) });
    this.remote = remote;
    this.index = options.index;
  }

  override workers(): { id: number; instances: number; stuck: boolean }[] {
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
    const exec = await super.create(options);
    if (exec instanceof LocalInstance) {
      const runnable = exec.program.instance;
      this.slots.set(runnable, this.nextSlot++);
      exec.onRelease(() => this.slots.delete(runnable));
    }
    return exec;
  }

  /** The watchdog's number of an instance (its runnable), if it is here. */
  slotOf(runnable: Runnable): number | undefined {
    return this.slots.get(runnable);
  }

  /** The watchdog's number of an instance of this executor. */
  slotOfInstance(exec: ExecInstance | undefined): number | undefined {
    return exec instanceof LocalInstance ? this.slots.get(exec.program.instance) : undefined;
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
