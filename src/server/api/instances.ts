// Instances as the server keeps them: owned by a principal (or anonymous),
// transient (deleted when they stop) or persistent (recorded in the store and
// checkpointed as snapshot modules whenever they stop, so that they survive a
// restart). Execution itself goes through the Executor.

import { randomUUID } from 'node:crypto';
import { Cause, State, statusToJSON, type Status } from '../../runtime/instance/status.ts';
import type { Limits } from '../config/config.ts';
import { conflict, instanceNotFound, limitExceeded, HttpError } from './errors.ts';
import { ExecError, type ExecInstance, type Executor, type HibernationReport, type Inspection } from '../exec/executor.ts';
import { ownerOf } from './request-source.ts';
import type { Logger } from '../obs/log.ts';
import type { Metrics } from '../obs/metrics.ts';
import { execHttpError, pagesFor, sha256Hex, type Modules } from './modules.ts';
import { parseDuration } from '../config/config.ts';
import type { InstanceRecord, Inventory, OwnedInstanceRecord } from '../store/inventory.ts';
import { ANONYMOUS, LocalQuota, NO_USAGE, SERVER, type Dimension, type Quota, type Usage } from './quota.ts';

export class ServerInstance {
  readonly id: string;
  readonly principal: string | undefined;
  readonly module: string;
  readonly created: number;
  fn: string;
  transient: boolean;
  tags: string[];
  exec: ExecInstance | undefined;
  /** Status while not running. */
  stored: Status;
  checkpoint: string | null = null;
  /** When the checkpoint was written (ms since the epoch). */
  checkpointed: number | undefined;
  /** What a takeover of this instance lost (after its server died), shown in its info. */
  note = '';
  running = false;
  deleted = false;
  /** Operations that need the instance to outlive a stop (snapshot of a transient instance). */
  hold = 0;
  /**
   * Set while a snapshot or checkpoint has paused the running instance;
   * settles when it runs again (or won't). A paused instance counts as running.
   */
  paused: Promise<void> | undefined;
  /** Pauses begun so far: a connection that ended during one is taken up again. */
  pauses = 0;
  /** What to do when the pause ends: a kill or suspend asked for meanwhile wins. */
  afterPause: 'resume' | 'kill' | 'suspend' = 'resume';
  /** Suspended by server shutdown: run again at startup. */
  resumeAtStart = false;
  /** Its worker was lost under it and it is being restored from its last checkpoint. */
  restoring = false;
  /** Its worker was lost during shutdown: its record stays as a crash leaves it, to resume at the next start. */
  lostAtShutdown = false;
  /** Its checkpoint is a hibernation snapshot in which its run waits (see InstanceRecord.hibernation). */
  hibernation: { wakeAt: number | null; idle: boolean } | null = null;
  limits: Limits;
  /** Resolves when the current run has stopped and the status is settled. */
  stopped: Promise<void> = Promise.resolve();
  /** The latest checkpoint write. */
  persisting: Promise<void> = Promise.resolve();
  /** The latest record write (they are made in order). */
  recording: Promise<void> = Promise.resolve();
  /** Given to another server of the cluster (or taken by one): this server no longer runs it or writes its record. */
  handedOver = false;
  /** Settles once a recorded instance being loaded (at startup, or taken over) runs, or is as it will stay. */
  loaded: Promise<void> = Promise.resolve();

  constructor(init: { id: string; principal?: string; module: string; fn: string; transient: boolean; tags: string[]; limits: Limits; created?: number; status?: Status }) {
    this.id = init.id;
    this.principal = init.principal;
    this.module = init.module;
    this.fn = init.fn;
    this.transient = init.transient;
    this.tags = init.tags;
    this.limits = init.limits;
    this.created = init.created ?? Date.now();
    this.stored = init.status ?? { state: State.SUSPENDED, cause: Cause.NORMAL, result: 0 };
  }

  /** Running, or paused to be resumed at once. */
  get active(): boolean {
    return this.running || this.paused !== undefined;
  }

  get status(): Status {
    return this.active ? { state: State.RUNNING, cause: Cause.NORMAL, result: 0 } : this.stored;
  }

  info(): Record<string, unknown> {
    const out: Record<string, unknown> = { instance: this.id, module: this.module, status: statusToJSON(this.status) };
    if (this.transient) out.transient = true;
    if (this.tags.length > 0) out.tags = this.tags;
    if (this.note) out.note = this.note;
    return out;
  }
}

export interface CreateInstance {
  principal?: string;
  module: string;
  bytes: Uint8Array;
  fn?: string;
  transient: boolean;
  suspend?: boolean;
  tags?: string[];
  id?: string;
  limits: Limits;
  scope?: string[];
}

/** How instances of other servers of a cluster are reached: they are moved here. */
export interface RemoteInstances {
  /** Have the instance of this record moved to this server (handed over by its owner, or taken over from a dead one). */
  acquire(record: OwnedInstanceRecord): Promise<void>;
}

export interface InstancesOptions {
  inventory: Inventory;
  /** This server's id: the owner named in the records it writes. */
  serverId: string;
  modules: Modules;
  executor: Executor;
  log: Logger;
  metrics: Metrics;
  /** Anonymous instances that may run at once (server-wide). */
  maxAnonymous?: number;
  /** Persistent instances (of all principals, in any state, hibernated included) the server keeps at once, and the setting named when it is full. */
  maxInstances?: { value: number; key: string };
  /** access.anonymoustimelimit: the run time limit of anonymous calls when not 0, named in their error. */
  anonymousTimeLimit?: number;
  /** What of the limits this process may hold (default: all of it, a server in one process). */
  quota?: Quota;
  /** Instances of the other processes serving the data directory (shards), so that ids stay unique. */
  directory?: InstanceDirectory;
}

/**
 * Where the instances of every process serving one data directory are
 * known: the ids a principal chooses stay unique across processes, and a
 * request for an instance that lives elsewhere can be passed there.
 */
export interface InstanceDirectory {
  /** Hold a principal's instance id for a create here; false when another process has it. */
  reserve(principal: string, id: string): Promise<boolean>;
  /** An instance of a principal is here now. */
  placed(inst: ServerInstance): void;
  /** It is gone from here (or a reservation was not used). */
  gone(principal: string, id: string): void;
}

/** Counts of creates under way, checked with the live ones so that concurrent requests cannot pass a limit together. */
interface Pending {
  instances: number;
  running: number;
  memory: number;
}

export class Instances {
  private readonly inventory: Inventory;
  private readonly serverId: string;
  /** Set by the cluster when the inventory is shared. */
  remote: RemoteInstances | undefined;
  private readonly modules: Modules;
  private readonly executor: Executor;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly owned = new Map<string, Map<string, ServerInstance>>();
  private readonly anonymous = new Set<ServerInstance>();
  private closing = false;
  private readonly maxAnonymous: number;
  private readonly maxInstances: { value: number; key: string } | undefined;
  private readonly anonymousTimeLimit: number;
  private readonly pending = new Map<string | undefined, Pending>();
  /** Persistent instances being created, and those registered (what server.maxinstances counts). */
  private pendingKept = 0;
  private kept = 0;
  private readonly quota: Quota;
  private readonly directory: InstanceDirectory | undefined;
  /** The limits of a principal's recorded instances (given by load()). */
  private limitsFor: (principal: string) => Limits = () => {
    throw new Error('instances are not loaded yet');
  };

  constructor(options: InstancesOptions) {
    this.inventory = options.inventory;
    this.serverId = options.serverId;
    this.modules = options.modules;
    this.executor = options.executor;
    this.log = options.log;
    this.metrics = options.metrics;
    this.maxAnonymous = options.maxAnonymous ?? Infinity;
    this.maxInstances = options.maxInstances;
    this.anonymousTimeLimit = options.anonymousTimeLimit ?? 0;
    this.quota = options.quota ?? new LocalQuota();
    this.directory = options.directory;
    this.metrics.addGauges(() => [
      { name: 'gate_instances', help: 'Instances by state.', values: this.countByState() },
      { name: 'gate_instance_memory_limit_bytes', help: 'Sum of the memory limits of running instances.', values: [[{}, this.runningMemory()]] },
      { name: 'gate_hibernated_instances', help: 'Running instances hibernated: their run waits on disk, not in memory.', values: [[{}, this.hibernatedCount()]] },
      {
        name: 'gate_worker_instances',
        help: 'Instances per execution worker (stuck=1 when the watchdog gave up on it).',
        values: this.executor.workers().map((w) => [{ worker: String(w.id), stuck: w.stuck ? '1' : '0' }, w.instances]),
      },
    ]);
  }

  private countByState(): [Record<string, string>, number][] {
    const counts = new Map<string, number>(['RUNNING', 'SUSPENDED', 'HALTED', 'TERMINATED', 'KILLED'].map((s) => [s, 0]));
    for (const inst of this.all()) counts.set(inst.status.state, (counts.get(inst.status.state) ?? 0) + 1);
    return [...counts].map(([state, n]) => [{ state }, n]);
  }

  private hibernatedCount(): number {
    let n = 0;
    for (const inst of this.all()) if (inst.active && inst.exec?.hibernating) n++;
    return n;
  }

  private runningMemory(): number {
    let total = 0;
    for (const inst of this.all()) if (inst.active) total += inst.exec?.memoryLimit ?? 0;
    return total;
  }

  *all(): Iterable<ServerInstance> {
    for (const m of this.owned.values()) yield* m.values();
    yield* this.anonymous;
  }

  /**
   * A principal's instance. In a cluster, one that another server runs is
   * moved here first (handed over by its server, or taken over from a dead
   * one): every operation then works on it as on any other.
   */
  async get(principal: string, id: string): Promise<ServerInstance> {
    const inst = this.owned.get(principal)?.get(id);
    if (inst) {
      // Registered already, maybe still being restored (a takeover under way): operations wait for it.
      await inst.loaded;
      return inst;
    }
    if (!this.remote) throw instanceNotFound();
    const record = await this.inventory.instance(principal, id);
    if (!record) throw instanceNotFound();
    if (record.owner !== this.serverId) await this.remote.acquire(record);
    const moved = this.owned.get(principal)?.get(id);
    if (!moved) throw instanceNotFound();
    await moved.loaded;
    return moved;
  }

  /** Whether a principal's instance is in this process. */
  has(principal: string, id: string): boolean {
    return this.owned.get(principal)?.has(id) ?? false;
  }

  /** A principal's instance to describe: in a cluster, one another server runs is described by its record (it stays there). */
  async describe(principal: string, id: string): Promise<ServerInstance> {
    const inst = this.owned.get(principal)?.get(id);
    if (inst || !this.remote) return inst ?? (await this.get(principal, id));
    const record = await this.inventory.instance(principal, id);
    if (!record) throw instanceNotFound();
    return this.fromRecord(record);
  }

  /** A principal's instances; in a cluster also those other servers run (as their records say). */
  async list(principal: string): Promise<ServerInstance[]> {
    const here = [...(this.owned.get(principal)?.values() ?? [])];
    if (this.remote) {
      const ids = new Set(here.map((i) => i.id));
      for (const r of await this.inventory.principalInstances(principal)) {
        if (!ids.has(r.id)) here.push(this.fromRecord(r));
      }
    }
    return here.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** An instance as its record describes it (not registered, nothing runs). */
  private fromRecord(rec: OwnedInstanceRecord): ServerInstance {
    const inst = new ServerInstance({
      id: rec.id,
      principal: rec.principal,
      module: rec.module,
      fn: rec.function,
      transient: false,
      tags: rec.tags,
      limits: this.limitsFor(rec.principal),
      created: rec.created,
      status: rec.status,
    });
    inst.checkpoint = rec.checkpoint;
    inst.checkpointed = rec.checkpointed ?? undefined;
    inst.note = rec.note;
    return inst;
  }

  private register(inst: ServerInstance): void {
    if (!inst.transient) this.kept++;
    if (inst.principal === undefined) {
      this.anonymous.add(inst);
      return;
    }
    let m = this.owned.get(inst.principal);
    if (!m) this.owned.set(inst.principal, (m = new Map()));
    m.set(inst.id, inst);
    // Calls (transient) are found by asking every process: the directory knows the persistent ones.
    if (!inst.transient) this.directory?.placed(inst);
  }

  private unregister(inst: ServerInstance): void {
    if (!inst.transient) this.kept--;
    if (inst.principal === undefined) {
      this.anonymous.delete(inst);
    } else {
      const m = this.owned.get(inst.principal);
      m?.delete(inst.id);
      if (m?.size === 0) this.owned.delete(inst.principal);
      if (!inst.transient) this.directory?.gone(inst.principal, inst.id);
    }
    this.quota.settle(keyOf(inst.principal), this.usageOf(inst.principal));
    this.quota.settle(SERVER, this.serverUsage());
  }

  async create(c: CreateInstance): Promise<ServerInstance> {
    if (this.closing) throw new HttpError(503, 'server is shutting down');
    const id = c.id ?? randomUUID();
    const memory = c.limits.maxmemorysize;
    const adds: Usage = { instances: 1, running: c.suspend ? 0 : 1, memory: c.suspend ? 0 : memory };
    // Reserved (in the same tick as the check) until the instance is registered
    // or fails, so that concurrent creates see each other.
    if (!c.transient) await this.admitServer(() => this.pendingKept++);
    // Taken from the map when reserving (an entry with nothing reserved may go meanwhile), kept while it holds something.
    let pending: Pending | undefined;
    const reserved: Usage = { ...NO_USAGE };
    const reserve = (u: Usage) => {
      pending ??= this.pendingOf(c.principal);
      pending.instances += u.instances;
      pending.running += u.running;
      pending.memory += u.memory;
      reserved.instances += u.instances;
      reserved.running += u.running;
      reserved.memory += u.memory;
    };
    try {
      if (c.principal !== undefined && this.owned.get(c.principal)?.has(id)) throw duplicateId();
      // In a cluster the id may be taken on another server.
      if (this.remote && c.id !== undefined && c.principal !== undefined && (await this.inventory.instance(c.principal, id))) throw duplicateId();
      await this.admit(c.principal, c.limits, adds, () => reserve(adds));
    } catch (error) {
      if (!c.transient) this.pendingKept--;
      this.quota.settle(SERVER, this.serverUsage());
      throw error;
    }
    const unreserve = () => {
      const p = pending!;
      p.instances -= reserved.instances;
      p.running -= reserved.running;
      p.memory -= reserved.memory;
      reserved.instances = reserved.running = reserved.memory = 0;
      if (!c.transient) this.pendingKept--;
      if (p.instances === 0) this.pending.delete(c.principal);
    };
    let claimed = false;
    const inst = new ServerInstance({
      id,
      principal: c.principal,
      module: c.module,
      fn: c.fn ?? '',
      transient: c.transient,
      tags: c.tags ?? [],
      limits: c.limits,
    });
    try {
      // A chosen id is held across the processes serving the data directory.
      if (c.id !== undefined && c.principal !== undefined && this.directory) {
        if (!(await this.directory.reserve(c.principal, id))) throw duplicateId();
        claimed = true;
      }
      try {
        inst.exec = await this.executor.create({
          ...this.execOptions(inst, c.bytes, c.module),
          function: c.fn,
          context: { instance: id, principal: c.principal, scope: c.scope ?? [] },
        });
      } catch (error) {
        throw execHttpError(error);
      }
      inst.stored = await this.initialStatus(c, inst.exec);
      // Registration happens after the awaits: check the id again.
      if (c.principal !== undefined && this.owned.get(c.principal)?.has(id)) throw duplicateId();
      // Its real memory (tables included) may be more than the limit assumed above.
      if (!c.suspend && inst.exec.memoryLimit > memory) {
        const more: Usage = { instances: 0, running: 0, memory: inst.exec.memoryLimit - memory };
        await this.admit(c.principal, c.limits, more, () => reserve(more));
      }
    } catch (error) {
      inst.exec?.release();
      unreserve();
      if (claimed) this.directory!.gone(c.principal!, id);
      this.quota.settle(keyOf(c.principal), this.usageOf(c.principal));
      this.quota.settle(SERVER, this.serverUsage());
      throw error;
    }
    unreserve();
    this.register(inst);
    if (!inst.transient) void this.writeRecord(inst);
    this.event(inst.transient ? 'INSTANCE_CREATE_STREAM' : 'INSTANCE_CREATE_KNOWN', inst, { transient: inst.transient, suspended: !!c.suspend });
    // A snapshot of a finished program is launched finished; a halted one runs only with a function.
    const state = inst.stored.state;
    const runnable = state === State.SUSPENDED || (state === State.HALTED && c.fn);
    if (!c.suspend && runnable) this.start(inst, state === State.HALTED ? c.fn : undefined);
    else if (inst.transient) this.onStop(inst, inst.stored); // a call of it ends at once
    else if (state === State.HALTED && c.suspend) void this.checkpoint(inst); // halted at creation: keep that state
    // In a cluster, the next request may reach another server: the record must be there by then.
    if (this.remote && !inst.transient) await inst.recording;
    return inst;
  }

  private pendingOf(principal: string | undefined): Pending {
    let p = this.pending.get(principal);
    if (!p) this.pending.set(principal, (p = { instances: 0, running: 0, memory: 0 }));
    return p;
  }

  /** Persistent instances held here, the creates under way included (what server.maxinstances counts). */
  private serverUsage(): Usage {
    return { instances: this.kept + this.pendingKept, running: 0, memory: 0 };
  }

  /**
   * Room for one more persistent instance in the server, taken by `take` in
   * the tick that found it. Calls (transient) are bounded by the running
   * limits and the memory pool instead: a server full of kept instances
   * still answers calls.
   */
  private async admitServer(take: () => void): Promise<void> {
    if (!this.maxInstances) {
      take();
      return;
    }
    const bounds: Usage = { instances: this.maxInstances.value, running: Infinity, memory: Infinity };
    for (;;) {
      const want = this.serverUsage();
      want.instances++;
      if (this.quota.fits(SERVER, want, bounds)) {
        take();
        return;
      }
      if ((await this.quota.widen(SERVER, want, bounds)) !== undefined) {
        throw new HttpError(503, `instance limit of the server reached (${this.maxInstances.key})`).failing('RESOURCE_LIMIT');
      }
    }
  }

  /** What a principal (or the anonymous callers) holds here, the creates under way included. */
  private usageOf(principal: string | undefined): Usage {
    const pending = this.pending.get(principal);
    if (principal === undefined) {
      const n = this.anonymous.size + (pending?.instances ?? 0);
      return { instances: n, running: 0, memory: 0 };
    }
    const usage: Usage = { instances: pending?.instances ?? 0, running: pending?.running ?? 0, memory: pending?.memory ?? 0 };
    for (const inst of this.owned.get(principal)?.values() ?? []) {
      usage.instances++;
      if (inst.active) {
        usage.running++;
        usage.memory += inst.exec?.memoryLimit ?? 0;
      }
    }
    return usage;
  }

  /** The limits of a principal, or of all anonymous callers together (they share access.anonymousprocs). */
  private limitsOf(principal: string | undefined, limits: Limits): Usage {
    if (principal === undefined) return { instances: this.maxAnonymous, running: Infinity, memory: Infinity };
    return { instances: limits.maxinstances, running: limits.maxprocs, memory: limits.totalmemorysize };
  }

  /**
   * Room for `adds` more within the limits, taken by `take` in the tick that
   * found it; waits only when this process must ask for more of them (a
   * shard), and checks again after.
   */
  private async admit(principal: string | undefined, limits: Limits, adds: Usage, take: () => void): Promise<void> {
    const key = keyOf(principal);
    const bounds = this.limitsOf(principal, limits);
    for (;;) {
      const now = this.usageOf(principal);
      const want: Usage = { instances: now.instances + adds.instances, running: now.running + adds.running, memory: now.memory + adds.memory };
      if (this.quota.fits(key, want, bounds)) {
        take();
        return;
      }
      const short = await this.quota.widen(key, want, bounds);
      if (short !== undefined) throw this.limitError(principal, limits, short);
    }
  }

  private limitError(principal: string | undefined, limits: Limits, short: Dimension): HttpError {
    if (principal === undefined) {
      return new HttpError(503, `anonymous instance limit exceeded (access.anonymousprocs = ${this.maxAnonymous})`).failing('RESOURCE_LIMIT');
    }
    if (short === 'instances') return limitExceeded('instance', 'principal.maxinstances', limits.maxinstances);
    if (short === 'running') return limitExceeded('running instance', 'principal.maxprocs', limits.maxprocs);
    return limitExceeded('memory', 'principal.totalmemorysize', limits.totalmemorysize);
  }

  /** What every executor.create of an instance has in common (module or checkpoint bytes, limits, owner). */
  private execOptions(inst: ServerInstance, bytes: Uint8Array, hash: string) {
    return {
      bytes,
      hash,
      owner: ownerOf(inst.principal),
      maxMemoryPages: pagesFor(inst.limits.maxmemorysize),
      timeLimit: inst.limits.timelimit > 0 ? inst.limits.timelimit * 1000 : undefined,
      timeResolution: parseDuration(inst.limits.timeresolution),
      onLost: () => this.lost(inst),
      // Persistent instances hibernate: their snapshots are checkpoints.
      hibernate: !inst.transient && inst.principal !== undefined,
      onHibernated: (h: HibernationReport) =>
        this.hibernated(inst, h).catch((error: unknown) => {
          this.log.error('hibernation not recorded', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
        }),
    };
  }

  /**
   * The instance hibernated (or, stopped, left memory): its snapshot, a
   * module file the executor wrote, is its checkpoint now, and its record
   * says whether its run waits in it.
   */
  private async hibernated(inst: ServerInstance, h: HibernationReport): Promise<void> {
    await this.inventory.adoptModule(h.checkpoint, h.size);
    if (inst.deleted || inst.handedOver || inst.transient || inst.principal === undefined) {
      await this.inventory.collectModule(h.checkpoint);
      return;
    }
    const old = inst.checkpoint;
    inst.checkpoint = h.checkpoint;
    inst.checkpointed = Date.now();
    inst.hibernation = h.waiting ? { wakeAt: h.wakeAt, idle: h.idle } : null;
    await this.writeRecord(inst);
    if (old && old !== inst.checkpoint) await this.inventory.collectModule(old);
  }

  /** A new execution of a persistent instance from its last checkpoint (or from its module when it has none). */
  private async recreate(inst: ServerInstance): Promise<ExecInstance> {
    const fresh = !inst.checkpoint;
    const hash = fresh ? inst.module : inst.checkpoint!;
    return this.executor.create({
      ...this.execOptions(inst, await this.modules.bytes(hash), hash),
      function: fresh ? inst.fn || undefined : undefined,
      context: { instance: inst.id, principal: inst.principal, scope: [] },
    });
  }

  /**
   * The status of a new instance: a snapshot's own; HALTED for a program
   * created suspended without a function and without _start (there is
   * nothing to resume, as in Gate: it is initialized and halts at once, so a
   * function can be run later); otherwise SUSPENDED until it starts.
   */
  private async initialStatus(c: CreateInstance, exec: ExecInstance): Promise<Status> {
    if (!c.suspend || c.fn || exec.status.state !== State.SUSPENDED) return exec.status;
    const facts = await this.executor.prepare(c.bytes, c.module, pagesFor(c.limits.maxmemorysize), ownerOf(c.principal));
    if (facts.snapshot || facts.entries.includes('_start')) return exec.status;
    return exec.run();
  }

  /**
   * The executor lost an instance with its worker. The one that held the
   * worker ends (its run reports how); a persistent bystander is restored
   * from its last checkpoint on another worker, unseen by its clients as a
   * checkpoint pause is; a transient one (a call) ends.
   */
  private lost(inst: ServerInstance): void {
    const exec = inst.exec;
    if (!exec || exec.lostAs !== 'bystander' || inst.deleted || inst.transient || inst.principal === undefined) return;
    if (this.closing) {
      inst.lostAtShutdown = true;
      return;
    }
    inst.restoring = true;
    // A pause under way (a checkpoint, a snapshot) restores it before it ends.
    if (inst.paused) return;
    const wasRunning = inst.running;
    this.paused(inst, async () => {
      if (wasRunning) await inst.stopped;
    }, { stop: false, resume: wasRunning }).catch((error: unknown) => {
      this.log.error('instance could not be restored', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
    });
  }

  /** A new execution of an instance whose worker was lost, from its last checkpoint. */
  private async restore(inst: ServerInstance, wasRunning: boolean): Promise<void> {
    await inst.persisting;
    inst.exec?.release();
    // Without a checkpoint only the module's initial state exists: usable when it was running or had not run yet.
    if (!inst.checkpoint && !wasRunning && !(inst.stored.state === State.SUSPENDED && inst.stored.cause === Cause.NORMAL)) {
      inst.exec = undefined;
      inst.stored = lostStatus('its worker was lost before its first checkpoint');
      inst.restoring = false;
      return;
    }
    try {
      inst.exec = await this.recreate(inst).catch((error: unknown) => {
        // The worker it was placed on was lost too (another instance's doing): once more.
        if (error instanceof ExecError && error.kind === 'internal') return this.recreate(inst);
        throw error;
      });
      inst.stored = inst.exec.status;
      this.directory?.placed(inst);
      this.log.warn('instance restored from its last checkpoint', { principal: inst.principal, instance: inst.id, checkpoint: inst.checkpoint });
    } catch (error) {
      inst.exec = undefined;
      inst.stored = lostStatus((error as Error).message);
      this.log.error('instance could not be restored', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
    } finally {
      inst.restoring = false;
    }
  }

  /** Begin a run (start, resume). */
  private start(inst: ServerInstance, fn?: string): void {
    const exec = inst.exec!;
    let run: Promise<Status>;
    try {
      run = exec.run(fn);
    } catch (error) {
      throw execHttpError(error);
    }
    inst.running = true;
    if (fn) inst.fn = fn;
    if (!inst.transient) void this.writeRecord(inst);
    inst.stopped = run.then(
      (status) => this.onStop(inst, status),
      (error: unknown) =>
        // Lost with its worker before the run began (a checkpoint's resume, say): it ends as the loss said, naming a limit for the offender.
        this.onStop(inst, exec.lostAs ? exec.status : { state: State.KILLED, cause: Cause.INTERNAL, result: 0, error: String((error as Error)?.message ?? error) }),
    );
  }

  private onStop(inst: ServerInstance, status: Status): void {
    inst.running = false;
    this.quota.settle(keyOf(inst.principal), this.usageOf(inst.principal));
    inst.hibernation = null; // the stop's checkpoint replaces the hibernation snapshot
    // Lost with its worker: restored from its last checkpoint (see lost()), or left for the next start.
    if (inst.restoring || inst.lostAtShutdown || inst.handedOver) return;
    if (status.limit === 'time') {
      const key = inst.principal === undefined && this.anonymousTimeLimit > 0 ? 'access.anonymoustimelimit' : 'principal.timelimit';
      status = { ...status, error: `run time limit exceeded (${key} = ${inst.limits.timelimit} s)` };
    }
    // A transient instance never halts: returning from its entry terminates it.
    inst.stored = inst.transient && status.state === State.HALTED ? { ...status, state: State.TERMINATED } : status;
    this.event('INSTANCE_STOP', inst, { status: statusToJSON(inst.stored) });
    if (inst.deleted) return;
    if (inst.transient) {
      if (inst.hold === 0) this.remove(inst);
      return;
    }
    this.checkpoint(inst);
  }

  /** Write the instance's state as a snapshot module and record it (after earlier writes). */
  private checkpoint(inst: ServerInstance): Promise<void> {
    const previous = inst.persisting;
    inst.persisting = (async () => {
      await previous;
      if (inst.deleted || inst.handedOver || inst.transient || !inst.exec || inst.running) return;
      const old = inst.checkpoint;
      try {
        const bytes = await inst.exec.snapshot();
        const hash = sha256Hex(bytes);
        await this.inventory.putModule(hash, bytes);
        inst.checkpoint = hash;
        inst.checkpointed = Date.now();
      } catch (error) {
        this.log.warn('checkpoint failed', { instance: inst.id, principal: inst.principal, error: (error as Error).message });
      }
      if (inst.deleted) return;
      await this.writeRecord(inst);
      if (old && old !== inst.checkpoint) await this.modules.collect(old);
    })();
    return inst.persisting;
  }

  /**
   * Write the instance's record after the writes before it. In a cluster the
   * write fails when another server took the instance over (this one lost its
   * lease meanwhile): it is dropped here.
   */
  private writeRecord(inst: ServerInstance): Promise<void> {
    const write = async () => {
      if (inst.principal === undefined || inst.transient || inst.deleted || inst.handedOver) return;
      const record: InstanceRecord = {
        principal: inst.principal,
        id: inst.id,
        module: inst.module,
        function: inst.fn,
        status: inst.status,
        tags: inst.tags,
        checkpoint: inst.checkpoint,
        resume: inst.resumeAtStart,
        created: inst.created,
        hibernation: inst.hibernation,
      };
      if (!(await this.inventory.putInstance(record, this.serverId, inst.checkpointed))) this.drop(inst, 'another server owns it now');
    };
    inst.recording = inst.recording.then(write).catch((error: unknown) => {
      this.log.error('instance record not written', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
    });
    return inst.recording;
  }

  private remove(inst: ServerInstance): void {
    inst.deleted = true;
    this.unregister(inst);
    inst.exec?.release();
    if (inst.principal !== undefined && !inst.transient) {
      const principal = inst.principal;
      inst.recording = inst.recording
        .then(async () => {
          await this.inventory.deleteInstance(principal, inst.id, this.serverId);
          if (inst.checkpoint) await this.modules.collect(inst.checkpoint);
        })
        .catch((error: unknown) => this.log.error('instance record not deleted', { principal, instance: inst.id, error: (error as Error).message }));
    }
    this.event('INSTANCE_DELETE', inst);
  }

  /** Stop running an instance here without a word to the inventory: another server runs it now. */
  private drop(inst: ServerInstance, why: string): void {
    if (inst.handedOver) return;
    inst.handedOver = true;
    this.unregister(inst);
    if (inst.running) inst.exec?.kill();
    inst.exec?.release();
    this.log.warn('instance dropped here', { principal: inst.principal, instance: inst.id, reason: why });
  }

  /** Record a Gate event about an instance (log and metrics). */
  event(type: string, inst: ServerInstance, extra: Record<string, unknown> = {}): void {
    this.metrics.events.inc({ type });
    if (this.log.enabled('info')) this.log.event(type, { principal: inst.principal, instance: { instance: inst.id, module: inst.module, ...extra } });
  }

  // Operations of the API.

  /** Kill a running instance; a no-op otherwise. */
  kill(inst: ServerInstance): void {
    if (inst.running) inst.exec?.kill();
    else if (inst.paused) inst.afterPause = 'kill';
    this.event('INSTANCE_KILL', inst);
  }

  /** Make persistent and ask to suspend; a no-op when not running. */
  suspend(inst: ServerInstance): void {
    if (!inst.active) return;
    this.persist(inst);
    if (inst.running) inst.exec?.suspend();
    else if (inst.afterPause === 'resume') inst.afterPause = 'suspend';
    this.event('INSTANCE_SUSPEND', inst);
  }

  /**
   * Suspend a running instance for `work` (snapshot, checkpoint), then let it
   * run on unless told otherwise meanwhile. With `stop: false` the instance
   * is stopped already (its worker was lost) and work restores it; it runs
   * on after when `resume`.
   */
  private async paused<T>(inst: ServerInstance, work: () => Promise<T>, how = { stop: true, resume: true }): Promise<T> {
    if (how.stop && (!inst.running || inst.paused)) return work();
    let unpause!: () => void;
    inst.paused = new Promise<void>((resolve) => (unpause = resolve));
    inst.pauses++;
    inst.afterPause = 'resume';
    inst.hold++;
    try {
      if (how.stop) {
        inst.exec!.suspend();
        await inst.stopped;
      }
      return await work();
    } finally {
      if (inst.restoring) await this.restore(inst, how.resume);
      inst.hold--;
      const then = (inst as ServerInstance).afterPause; // changed by kill() or suspend() meanwhile
      inst.afterPause = 'resume';
      const resumable = inst.stored.state === State.SUSPENDED && inst.stored.cause === Cause.NORMAL;
      inst.paused = undefined;
      if (inst.deleted) {
        // nothing left to do
      } else if (then === 'resume' && how.resume && resumable && !this.closing && inst.exec) {
        try {
          this.start(inst);
        } catch (error) {
          this.log.warn('resume after pause failed', { instance: inst.id, error: (error as Error).message });
        }
      } else if (then === 'kill' && inst.exec) {
        inst.exec.kill();
        this.onStop(inst, inst.exec.status);
      } else if (inst.transient && inst.hold === 0) {
        this.remove(inst);
      } else {
        // Restored while the server closes: it runs again at the next start.
        if (this.closing && !how.stop && how.resume && resumable) inst.resumeAtStart = true;
        void this.writeRecord(inst);
      }
      unpause();
    }
  }

  private persist(inst: ServerInstance): void {
    if (!inst.transient || inst.principal === undefined) return;
    inst.transient = false;
    if (!inst.deleted) this.kept++;
    void this.writeRecord(inst);
    this.directory?.placed(inst);
  }

  /** The status once the instance is not running, or the current one if the signal aborts first. */
  async wait(inst: ServerInstance, signal?: AbortSignal): Promise<Status> {
    const until = (p: Promise<void>) =>
      new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        signal?.addEventListener('abort', done, { once: true });
        void p.then(done);
      });
    while (inst.active && !signal?.aborted) {
      await until(inst.running ? inst.stopped : inst.paused!);
    }
    // In a cluster the status must be in the record before any server is told it.
    if (this.remote && !inst.active) await until(inst.persisting.then(() => inst.recording));
    return inst.status;
  }

  async resume(inst: ServerInstance, fn: string | undefined): Promise<void> {
    const check = (): ExecInstance => {
      const state = inst.status.state;
      if (state === State.SUSPENDED) {
        if (fn) throw conflict('function specified for suspended instance');
      } else if (state === State.HALTED) {
        if (!fn) throw conflict('function must be specified when resuming halted instance');
      } else {
        throw conflict('instance must be suspended or halted');
      }
      if (!inst.exec) throw conflict('instance state is not available');
      return inst.exec;
    };
    const exec = check();
    // Checked again when the room was found: it may have changed meanwhile.
    await this.admit(inst.principal, inst.limits, { instances: 0, running: 1, memory: exec.memoryLimit }, () => {
      check();
      this.start(inst, fn);
    });
    this.event('INSTANCE_RESUME', inst, { function: fn });
  }

  async delete(inst: ServerInstance): Promise<void> {
    if (inst.active) throw conflict('instance must not be running');
    await inst.persisting;
    if (inst.active) throw conflict('instance must not be running');
    if (!inst.deleted) this.remove(inst);
    await inst.recording;
  }

  update(inst: ServerInstance, persist: boolean, tags: string[]): void {
    let changed = false;
    if (persist && inst.transient) {
      this.persist(inst);
      changed = true;
    }
    if (tags.length > 0 && (tags.length !== inst.tags.length || tags.some((t, i) => t !== inst.tags[i]))) {
      inst.tags = tags;
      void this.writeRecord(inst);
      changed = true;
    }
    if (changed) this.event('INSTANCE_UPDATE', inst, { persist, tagcount: tags.length });
  }

  /**
   * Snapshot as a new module; a running instance is suspended for it and
   * then resumed. Returns the module hash (stored, not yet pinned).
   */
  async snapshot(inst: ServerInstance): Promise<string> {
    if (!inst.exec) throw conflict('instance state is not available');
    return this.paused(inst, async () => {
      if (inst.running || inst.deleted) throw conflict('instance must not be running');
      let bytes: Uint8Array;
      try {
        bytes = await inst.exec!.snapshot();
      } catch (error) {
        throw execHttpError(error);
      }
      const hash = sha256Hex(bytes);
      await this.inventory.putModule(hash, bytes);
      this.event('INSTANCE_SNAPSHOT', inst, { module: hash });
      return hash;
    });
  }

  connect(
    inst: ServerInstance,
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: () => void,
  ): Promise<boolean> {
    // A client arriving during a snapshot or checkpoint joins the next run.
    if (inst.paused) return inst.paused.then(() => this.connect(inst, input, output, signal, onJoin));
    if (!inst.running || !inst.exec) return Promise.resolve(false);
    return inst.exec.connect(input, output, signal, onJoin);
  }

  /**
   * Join a client and keep it joined across snapshots and checkpoints: a
   * pause cuts the connection (the executor may report that before or after
   * the pause ends), and the client is joined to the next run's restored
   * stream. open() makes the client's streams for each join. Resolves
   * whether the first join happened.
   */
  async connectSpanningPauses(
    inst: ServerInstance,
    open: () => [ReadableStream<Uint8Array> | null, WritableStream<Uint8Array> | null],
    signal: AbortSignal,
    onJoin?: () => void,
  ): Promise<boolean> {
    let joined = false;
    for (;;) {
      const pauses = inst.pauses;
      const [input, output] = open();
      await this.connect(inst, input, output, signal, () => {
        if (!joined) onJoin?.();
        joined = true;
      });
      if (signal.aborted) break;
      if (inst.paused) await inst.paused;
      else if (inst.pauses === pauses) break;
      if (!inst.running || signal.aborted) break;
    }
    return joined;
  }

  async inspect(inst: ServerInstance): Promise<Inspection> {
    if (inst.running) throw conflict('instance must be stopped');
    if (!inst.exec) throw conflict('instance state is not available');
    try {
      return await inst.exec.inspect();
    } catch (error) {
      throw execHttpError(error);
    }
  }

  /** End a call: kill the instance if it still runs; a transient one is then deleted. */
  async endCall(inst: ServerInstance): Promise<void> {
    if (inst.paused) {
      inst.afterPause = 'kill';
      await inst.paused;
    } else if (inst.running) {
      inst.exec?.kill();
      await inst.stopped;
    } else if (inst.transient && !inst.deleted && inst.hold === 0) {
      this.remove(inst);
    }
  }

  // Server life cycle.

  /** Load the recorded instances and resume those that were running. */
  async load(limitsFor: (principal: string) => Limits): Promise<void> {
    this.limitsFor = limitsFor;
    await this.adopt(await this.inventory.ownedInstances(this.serverId));
  }

  /** The limits of principals' recorded instances, for a process given them without load() (a shard). */
  setLimits(limitsFor: (principal: string) => Limits): void {
    this.limitsFor = limitsFor;
  }

  /**
   * Run recorded instances this server owns now (at startup, taken over from
   * another server, or `restored` after their shard was lost). They are held
   * whatever the limits say: they existed already.
   */
  async adopt(records: OwnedInstanceRecord[], restored = false): Promise<void> {
    // Many instances of one module are common (each hibernated one is created with its module's bytes).
    const modules = new Map<string, Promise<Uint8Array>>();
    const bytes = (hash: string): Promise<Uint8Array> => {
      let b = modules.get(hash);
      if (!b) modules.set(hash, (b = this.modules.bytes(hash)));
      return b;
    };
    // Hibernated ones cost the workers nothing but an entry each: many are revived at once.
    const dormant = new Set<Promise<void>>();
    for (const rec of records) {
      if (rec.principal !== undefined && this.owned.get(rec.principal)?.has(rec.id)) continue;
      const inst = this.fromRecord(rec);
      if (rec.note) this.log.warn('instance taken over', { principal: rec.principal, instance: rec.id, note: rec.note });
      this.register(inst);
      await Promise.all([this.quota.claim(rec.principal, this.usageOf(rec.principal)), this.quota.claim(SERVER, this.serverUsage())]);
      // Where it is, and what it holds once it runs, are told when it is loaded.
      const placed = async () => {
        this.directory?.placed(inst);
        await this.quota.claim(rec.principal, this.usageOf(rec.principal));
      };
      if (rec.hibernation && rec.checkpoint && rec.status.state === State.RUNNING && !this.inventory.shared) {
        const reviving = this.reviveDormant(inst, rec, bytes)
          .then((ok) => (ok ? undefined : this.revive(inst, rec, restored)))
          .then(placed);
        inst.loaded = reviving;
        dormant.add(reviving);
        void reviving.finally(() => dormant.delete(reviving));
        if (dormant.size >= DORMANT_AT_ONCE) await Promise.race(dormant);
        continue;
      }
      inst.loaded = this.revive(inst, rec, restored).then(placed);
      await inst.loaded;
    }
    await Promise.all(dormant);
  }

  /**
   * A run that hibernated waiting goes on waiting in its snapshot: the
   * executor keeps it dropped until something needs it, at no cost now. One
   * whose services had something under way is restored at once, so that
   * they resume. False when the executor cannot (it is then restored as a
   * suspended program).
   */
  private async reviveDormant(inst: ServerInstance, rec: InstanceRecord, bytes: (hash: string) => Promise<Uint8Array>): Promise<boolean> {
    const hibernation = rec.hibernation!;
    try {
      inst.hibernation = hibernation;
      inst.exec = await this.executor.create({
        ...this.execOptions(inst, await bytes(inst.module), inst.module),
        context: { instance: inst.id, principal: inst.principal, scope: [] },
        dormant: { checkpoint: rec.checkpoint!, wakeAt: hibernation.idle ? hibernation.wakeAt : Date.now() },
      });
      this.start(inst);
      return true;
    } catch (error) {
      inst.hibernation = null;
      inst.exec = undefined;
      this.log.warn('hibernated instance restored as suspended', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
      return false;
    }
  }

  /** What this process holds of a quota key (see quota.ts). */
  held(key: string): Usage {
    if (key === SERVER) return this.serverUsage();
    return this.usageOf(key === ANONYMOUS ? undefined : key);
  }

  /**
   * Give an instance to another server (it asked for it): suspend it if it
   * runs, write its checkpoint and record (to resume there when it was
   * running), name the new owner, and forget it here. False when it is not
   * here or cannot move now (a call's instance, one being deleted).
   */
  async handOver(principal: string, id: string, to: string, transfer: () => Promise<boolean>): Promise<boolean> {
    const inst = this.owned.get(principal)?.get(id);
    if (!inst || inst.transient || inst.deleted || inst.handedOver || this.closing) return false;
    if (inst.active) {
      inst.resumeAtStart = true;
      if (inst.running) inst.exec?.suspend();
      else inst.afterPause = 'suspend';
    }
    await this.settled(inst);
    if (inst.resumeAtStart && inst.stored.state !== State.SUSPENDED) {
      // It stopped by itself meanwhile: nothing to resume there.
      inst.resumeAtStart = false;
      await this.writeRecord(inst);
    }
    await inst.recording;
    if (!(await transfer())) return false;
    inst.handedOver = true;
    this.unregister(inst);
    inst.exec?.release();
    this.event('INSTANCE_HANDOVER', inst, { to });
    return true;
  }

  /** This server's lease was lost: its persistent instances may already run elsewhere, so they stop here. */
  dropOwned(): void {
    for (const inst of [...this.all()]) {
      if (inst.principal !== undefined && !inst.transient) this.drop(inst, 'this server lost its cluster lease');
    }
  }

  private async revive(inst: ServerInstance, rec: InstanceRecord, restored = false): Promise<void> {
    const wasRunning = rec.status.state === State.RUNNING || rec.resume;
    const fresh = !rec.checkpoint;
    // Without a checkpoint only the module's initial state exists: usable when
    // the instance was running or had not run yet.
    if (fresh && !(wasRunning || (rec.status.state === State.SUSPENDED && rec.status.cause === Cause.NORMAL))) {
      inst.stored = rec.status.state === State.RUNNING ? lostStatus('no checkpoint') : rec.status;
      return;
    }
    try {
      inst.exec = await this.recreate(inst);
    } catch (error) {
      this.log.error('instance could not be restored', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
      inst.stored = lostStatus((error as Error).message);
      void this.writeRecord(inst);
      return;
    }
    // An end recorded after the last checkpoint (an instance killed with its worker) stands.
    const ended = rec.status.state === State.KILLED || rec.status.state === State.TERMINATED;
    inst.stored = ended ? rec.status : inst.exec.status;
    if (restored) this.log.warn('instance restored from its last checkpoint', { principal: inst.principal, instance: inst.id, checkpoint: inst.checkpoint });
    if (!wasRunning) return;
    const state = inst.stored.state;
    try {
      if (state === State.SUSPENDED && inst.stored.cause === Cause.NORMAL) this.start(inst);
      else if (state === State.HALTED && !fresh && rec.function && rec.status.state === State.RUNNING) this.start(inst, rec.function);
      else void this.writeRecord(inst);
      this.log.info('instance restored', { principal: inst.principal, instance: inst.id, state: inst.status.state });
    } catch (error) {
      this.log.error('instance could not be resumed', { principal: inst.principal, instance: inst.id, error: (error as Error).message });
    }
  }

  /**
   * Stop everything: persistent running instances are suspended and
   * checkpointed (to be resumed at the next start), the others killed.
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    // Hibernated ones stay as their hibernation snapshots hold them: nothing to do for them.
    const frozen = (await this.executor.freeze?.()) ?? new Set<string>();
    const waits: Promise<void>[] = [];
    for (const inst of [...this.all()]) {
      if (frozen.has(inst.id) && inst.hibernation) continue;
      if (inst.active) {
        if (inst.transient || inst.principal === undefined) this.kill(inst);
        else {
          inst.resumeAtStart = true;
          if (inst.running) inst.exec?.suspend();
        }
      }
      waits.push(this.settled(inst));
    }
    await Promise.all(waits);
    // Records of instances that stopped by themselves meanwhile must not resume.
    for (const inst of this.all()) {
      if (inst.lostAtShutdown || (frozen.has(inst.id) && inst.hibernation)) continue;
      if (inst.resumeAtStart && inst.stored.state !== State.SUSPENDED) {
        inst.resumeAtStart = false;
        void this.writeRecord(inst);
      }
    }
    await Promise.all([...this.all()].map((inst) => inst.recording));
  }

  /** Once the instance has stopped, no pause is under way, and its checkpoint and record are written. */
  private async settled(inst: ServerInstance): Promise<void> {
    for (;;) {
      await inst.stopped;
      if (inst.paused) await inst.paused;
      else if (!inst.running) break;
    }
    await inst.persisting;
    await inst.recording;
  }

  /** Periodic checkpoint of running persistent instances: suspend, snapshot, resume. */
  async checkpointRunning(): Promise<void> {
    for (const inst of [...this.all()]) {
      if (!inst.running || inst.paused || inst.transient || inst.principal === undefined || this.closing) continue;
      if (inst.exec?.hibernating) continue; // its hibernation snapshot is its checkpoint
      const previous = inst.checkpoint;
      await this.paused(inst, async () => {
        // The stop wrote the checkpoint, recorded as running so that a crash resumes it.
        await inst.persisting;
      });
      if (inst.checkpoint !== previous) this.log.info('instance checkpointed', { principal: inst.principal, instance: inst.id, module: inst.checkpoint });
    }
  }
}

/** Hibernated instances revived at once at startup (each is a message to a worker and its answer). */
const DORMANT_AT_ONCE = 64;

function lostStatus(reason: string): Status {
  return { state: State.KILLED, cause: Cause.INTERNAL, result: 0, error: `instance state was lost: ${reason}` };
}

/** The quota key of an owner. */
function keyOf(principal: string | undefined): string {
  return principal ?? ANONYMOUS;
}

function duplicateId(): HttpError {
  return conflict('duplicate instance id').failing('INSTANCE_ID_EXISTS');
}
