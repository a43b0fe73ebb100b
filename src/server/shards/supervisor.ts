// gate-server in shards: processes that each serve HTTP on the same
// port (SO_REUSEPORT: the kernel spreads the connections) and run the
// instances of the requests they take, and this supervisor, which serves no
// request itself. A call therefore never leaves the process that read it.
//
// What the shards share goes through the supervisor, off the path of a
// call: preparation (the preparer processes, with their deadline, memory cap
// and fairness between owners), the quota grants that keep the limits of
// principals, anonymous callers and the server exact across shards
// (quota-ledger.ts), where each persistent instance lives (a request for one
// on another shard is passed there: http/forward.ts), the admission of new
// principals, lists and metrics of all shards, and the BroadcastChannels of
// the peer service.
//
// The supervisor is also the watchdog. A shard that stops answering its
// heartbeat (or crashes, or passes its memory cap) is killed, which always
// works for a process, and replaced on the same port. Its connections go
// with it. The persistent instance in its time slice ends KILLED with an
// error naming the limit; the other persistent instances on it are restored
// from their last checkpoint on the other shards.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { defaultCacheDir, sha256Hex } from '../../host/module-cache.ts';
import { Cause, State } from '../../runtime/instance/status.ts';
import type { Usage } from '../api/quota.ts';
import { NewcomerLimiter } from '../api/newcomers.ts';
import type { Config } from '../config/config.ts';
import { ExecError } from '../exec/executor.ts';
import { offenceText } from '../exec/worker-executor.ts';
import { PreparerPool } from '../exec/worker/preparers.ts';
import type { LossKind } from '../exec/worker/process.ts';
import type { PrepareReply } from '../exec/worker/protocol.ts';
import type { Logger } from '../obs/log.ts';
import { renderMetrics, type MetricsSnapshot } from '../obs/metrics.ts';
import type { RunningServer } from '../server.ts';
import { acquirePidFile, releasePidFile } from '../store/pid-lock.ts';
import { Store } from '../store/store.ts';
import { RecentMap } from '../util/recent-map.ts';
import type { InstanceKey, Placement, ShardCalls, ShardNotes, ShardSetup } from './protocol.ts';
import { QuotaLedger } from './quota-ledger.ts';
import { ShardProcess } from './shard-process.ts';

export interface ShardsOptions {
  listen: { host: string; port: number };
  dataDir: string;
  config: Config;
  log: Logger;
  /** Accept unsigned local tokens (access.local). */
  local?: boolean;
  /** Tests only: enables blockForTest. */
  testHooks?: boolean;
  /** The shards' logs go to `log` (as JSON lines) instead of their own stderr. */
  relayLogs?: boolean;
}

export interface RunningShards extends RunningServer {
  /** The shards' process ids (tests). */
  pids(): number[];
  /**
   * Test hook: make the shard holding a principal's persistent instance stop
   * answering for good, in that instance's slice, as a program V8 cannot
   * interrupt would (`heap`: fill its heap until V8 aborts).
   */
  blockForTest(principal: string, id: string, how: 'loop' | 'heap'): void;
  /** The shard a principal's persistent instance is on (tests). */
  shardOf(principal: string, id: string): number | undefined;
}

const MIB = 1024 * 1024;
/** Milliseconds between heartbeats. */
const HEARTBEAT = 1000;
/** Milliseconds a shard may take to start. */
const START_TIMEOUT = 30_000;
/** Prepared programs kept to hand to the shards that ask for them next (bytes). */
const PREPARED_BYTES_KEPT = 64 * MIB;
/** Refusals remembered (a refused module is refused at once when it comes again). */
const REFUSALS_KEPT = 10_000;
/** Seconds a newly stored module is kept whatever the cache of unpinned modules holds. */
const YOUNG_SECONDS = 5;

/** Start the shards on the data directory, which one server at a time may serve. */
export async function startShards(options: ShardsOptions): Promise<RunningShards> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const lockFile = path.join(options.dataDir, 'server.pid');
  const holder = acquirePidFile(lockFile);
  if (holder !== undefined) {
    const { DataDirInUse } = await import('../server.ts');
    throw new DataDirInUse(options.dataDir, holder);
  }
  let supervisor: Supervisor | undefined;
  try {
    supervisor = new Supervisor(options);
    await supervisor.start();
    const s = supervisor;
    return {
      url: s.url,
      close: () => s.close().finally(() => releasePidFile(lockFile)),
      pids: () => s.pids(),
      blockForTest: (principal, id, how) => s.blockForTest(principal, id, how),
      shardOf: (principal, id) => s.shardOf(principal, id),
    };
  } catch (error) {
    await supervisor?.close().catch(() => {});
    releasePidFile(lockFile);
    throw error;
  }
}

type Phase = { name: 'starting' } | { name: 'serving' } | { name: 'closing'; done: Promise<void> };

class Supervisor {
  url = '';
  private readonly options: ShardsOptions;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly store: Store;
  private readonly socketDir: string;
  private readonly peers: string[];
  private readonly count: number;
  private readonly shards: (ShardProcess | undefined)[];
  private readonly preparers: PreparerPool;
  private readonly prepared = new RecentMap<string, PrepareReply>(Infinity, {
    of: (r) => r.share.program.byteLength + r.share.prepared.bytes.byteLength,
    max: PREPARED_BYTES_KEPT,
  });
  private readonly refused = new RecentMap<string, ExecError>(REFUSALS_KEPT);
  private readonly preparing = new Map<string, Promise<PrepareReply>>();
  private readonly ledger: QuotaLedger;
  private readonly newcomers: NewcomerLimiter;
  /** Persistent instances by `principal id`, and where they are. */
  private readonly placements = new Map<string, { shard: number; slot: number | undefined }>();
  /** Ids held for creates under way. */
  private readonly reserved = new Map<string, number>();
  private readonly lastUsed = new Map<string, number>();
  private port = 0;
  private phase: Phase = { name: 'starting' };
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private trimmer: ReturnType<typeof setInterval> | undefined;
  private lastTick = performance.now();

  constructor(options: ShardsOptions) {
    this.options = options;
    this.config = options.config;
    this.log = options.log;
    const r = this.config.runtime;
    this.count = Math.max(1, r.workers);
    this.store = new Store(options.dataDir);
    try {
      this.socketDir = mkdtempSync(path.join(os.tmpdir(), 'gate-shards-'));
    } catch (error) {
      this.store.close();
      throw error;
    }
    this.peers = Array.from({ length: this.count }, (_, i) => path.join(this.socketDir, `shard-${i}.sock`));
    this.shards = new Array(this.count).fill(undefined);
    this.preparers = new PreparerPool({
      preparers: r.preparers,
      timeout: r.preparetimeout * 1000,
      memory: r.preparememory * MIB,
      queue: r.preparequeue,
      cacheDir: r.cachedir || defaultCacheDir(),
      cacheBytes: r.cachesize > 0 ? r.cachesize * MIB : undefined,
      keys: { timeout: 'runtime.preparetimeout', memory: 'runtime.preparememory', queue: 'runtime.preparequeue' },
      nextId: (() => {
        let next = 1000;
        return () => next++;
      })(),
    });
    this.ledger = new QuotaLedger({
      recall: async (shard, key, seq) => {
        const s = this.shards[shard];
        if (!s || s.gone) return undefined;
        try {
          return await s.rpc.call<Usage>('recall', { key, seq });
        } catch {
          return undefined;
        }
      },
      shards: () => this.count,
    });
    this.newcomers = new NewcomerLimiter(this.config.access.newprincipals, 'access.newprincipals', (id) => this.store.knowsPrincipal(id));
  }

  async start(): Promise<void> {
    const collected = this.store.collectUnreferenced();
    if (collected > 0) this.log.info('unpinned modules of an earlier run removed', { modules: collected });
    const uuid = this.store.serverUuid(this.config.server.uuid);
    // SO_REUSEPORT lets any process of this user join a port: another server on it would silently take half the connections.
    if (this.options.listen.port !== 0) await portIsFree(this.options.listen);
    // The first shard chooses the port when it is 0; the others join it.
    const first = this.spawn(0, this.options.listen.port);
    this.port = await this.within(first.ready, 'worker 0 did not start');
    const rest = Array.from({ length: this.count - 1 }, (_, i) => this.spawn(i + 1, this.port));
    await Promise.all(rest.map((s) => this.within(s.ready, `worker ${s.index} did not start`)));
    const records = this.store.instances();
    const byShard: InstanceKey[][] = this.shards.map(() => []);
    records.forEach((rec, i) => byShard[i % this.count].push({ principal: rec.principal, id: rec.id }));
    await Promise.all(this.live().map((s) => s.rpc.call('adopt', { instances: byShard[s.index], restored: false })));
    for (const s of this.live()) this.serve(s);
    this.phase = { name: 'serving' };
    this.watchdog = setInterval(() => this.watch(), HEARTBEAT);
    this.watchdog.unref();
    this.trimmer = setInterval(() => this.trimUnpinned(), 1000);
    this.trimmer.unref();
    const scheme = this.config.http.tls.certfile ? 'https' : 'http';
    const host = this.options.listen.host;
    this.url = `${scheme}://${host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host}:${this.port}`;
    this.log.info('server started', { url: this.url, uuid, datadir: this.options.dataDir, workers: this.count, policy: this.config.access.policy, local: this.options.local ?? false });
  }

  pids(): number[] {
    return this.live().map((s) => s.pid ?? 0);
  }

  blockForTest(principal: string, id: string, how: 'loop' | 'heap'): void {
    if (!this.options.testHooks) throw new Error('ERR_TEST_HOOKS_DISABLED: blockForTest needs the testHooks option');
    const p = this.placements.get(keyOf({ principal, id }));
    if (!p) throw new RangeError(`no instance ${id}`);
    this.shards[p.shard]?.rpc.note('block', { slot: p.slot, how });
  }

  shardOf(principal: string, id: string): number | undefined {
    return this.placements.get(keyOf({ principal, id }))?.shard;
  }

  close(): Promise<void> {
    if (this.phase.name === 'closing') return this.phase.done;
    const done = (async () => {
      // The watchdog keeps going: a shard whose program holds it cannot shut down, and is killed as it would be while serving.
      clearInterval(this.trimmer);
      await Promise.all(
        this.live().map(async (s) => {
          s.stopping = true;
          try {
            await s.rpc.call('shutdown');
          } catch (error) {
            this.log.warn('worker did not shut down cleanly', { worker: s.index, error: (error as Error).message });
          }
        }),
      );
      // Shards exit by themselves after their shutdown; what is left goes.
      await Promise.race([Promise.all(this.live().map((s) => s.exited)), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      clearInterval(this.watchdog);
      await Promise.all(this.shards.map((s) => s?.kill()));
      await this.preparers.close();
      this.store.close();
      rmSync(this.socketDir, { recursive: true, force: true });
      this.log.info('server stopped', { url: this.url });
    })();
    this.phase = { name: 'closing', done };
    return done;
  }

  private live(): ShardProcess[] {
    return this.shards.filter((s): s is ShardProcess => s !== undefined && !s.gone);
  }

  private async within<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), START_TIMEOUT)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  private spawn(index: number, port: number): ShardProcess {
    const setup: ShardSetup = {
      index,
      shards: this.count,
      dataDir: this.options.dataDir,
      config: this.config,
      listen: { host: this.options.listen.host, port },
      peers: this.peers,
      local: this.options.local ?? false,
      testHooks: this.options.testHooks,
      relayLogs: this.options.relayLogs,
    };
    const shard: ShardProcess = new ShardProcess(
      setup,
      {
        call: (kind, body): unknown => this.call(shard, kind as keyof ShardCalls, body),
        note: (kind, body) => this.note(shard, kind as keyof ShardNotes, body),
        failed: (s, kind, message) => this.lose(s, kind, message),
      },
      this.config.runtime.workerheap > 0 ? this.config.runtime.workerheap : undefined,
    );
    this.shards[index] = shard;
    return shard;
  }

  private serve(shard: ShardProcess): void {
    shard.serving = true;
    shard.rpc.note('serve');
  }

  private call(shard: ShardProcess, kind: keyof ShardCalls, body: unknown): unknown {
    switch (kind) {
      case 'prepare': {
        const b = body as ShardCalls['prepare'];
        return this.prepare(b.bytes, b.pages, b.owner);
      }
      case 'acquire': {
        const b = body as ShardCalls['acquire'];
        return this.ledger.acquire(shard.index, b.key, b.usage, b.limits);
      }
      case 'claim': {
        const b = body as ShardCalls['claim'];
        return this.ledger.claim(shard.index, b.key, b.usage);
      }
      case 'reserve': {
        const key = keyOf(body as InstanceKey);
        if (this.placements.has(key) || this.reserved.has(key)) return false;
        this.reserved.set(key, shard.index);
        return true;
      }
      case 'locate':
        return this.locate(body as InstanceKey);
      case 'list':
        return this.list((body as ShardCalls['list']).principal);
      case 'metrics':
        return this.metrics();
      case 'unpinned': {
        const b = body as ShardCalls['unpinned'];
        const others = this.live().filter((s) => s !== shard);
        return Promise.all(others.map((s) => s.rpc.call('forget-pin', b).catch(() => undefined))).then(() => null);
      }
      case 'newcomer': {
        const b = body as ShardCalls['newcomer'];
        this.newcomers.admit(b.principal, b.source);
        return null;
      }
    }
    throw new Error(`unknown call from a worker: ${String(kind)}`);
  }

  private note(shard: ShardProcess, kind: keyof ShardNotes, body: unknown): void {
    switch (kind) {
      case 'grant': {
        const b = body as ShardNotes['grant'];
        this.ledger.set(shard.index, b.key, b.grant);
        return;
      }
      case 'placed': {
        const b = body as ShardNotes['placed'];
        const key = keyOf(b);
        this.reserved.delete(key);
        if (b.persistent) this.placements.set(key, { shard: shard.index, slot: b.slot });
        return;
      }
      case 'gone': {
        const key = keyOf(body as InstanceKey);
        if (this.reserved.get(key) === shard.index) this.reserved.delete(key);
        if (this.placements.get(key)?.shard === shard.index) this.placements.delete(key);
        return;
      }
      case 'broadcast':
        for (const other of this.live()) if (other !== shard) other.rpc.note('broadcast', body);
        return;
      case 'log':
        this.log.line((body as ShardNotes['log']).line);
        return;
      case 'used':
        for (const hash of (body as ShardNotes['used']).hashes) this.lastUsed.set(hash, Date.now());
        return;
    }
  }

  /** Prepared once per program and memory limit for all shards; a refused module is refused at once when it comes again. */
  private prepare(bytes: Uint8Array, pages: number, owner: string): Promise<PrepareReply> {
    const id = `${sha256Hex(bytes)}:${pages}`;
    const refusal = this.refused.get(id);
    if (refusal) return Promise.reject(refusal);
    const done = this.prepared.get(id);
    if (done) return Promise.resolve(done);
    let under = this.preparing.get(id);
    if (!under) {
      under = this.preparers.prepare(bytes, pages, owner);
      this.preparing.set(id, under);
      under.then(
        (reply) => {
          // Snapshots are a new module at every checkpoint: only their programs are worth keeping.
          if (!reply.facts.snapshot) this.prepared.set(id, reply);
        },
        (error: unknown) => {
          if (error instanceof ExecError && error.kind === 'module') this.refused.set(id, error);
        },
      ).finally(() => this.preparing.delete(id));
    }
    return under;
  }

  private async locate(k: InstanceKey): Promise<number | null> {
    const p = this.placements.get(keyOf(k));
    if (p && this.shards[p.shard] && !this.shards[p.shard]!.gone) return p.shard;
    // Calls (transient instances) are not placed: ask every shard.
    const answers = await Promise.all(this.live().map((s) => s.rpc.call<boolean>('has', k).catch(() => false)));
    const i = answers.indexOf(true);
    return i < 0 ? null : this.live()[i].index;
  }

  private async list(principal: string): Promise<Record<string, unknown>[]> {
    const lists = await Promise.all(this.live().map((s) => s.rpc.call<Record<string, unknown>[]>('list', { principal }).catch(() => [])));
    return lists.flat().sort((a, b) => (String(a.instance) < String(b.instance) ? -1 : 1));
  }

  private async metrics(): Promise<string> {
    const snapshots = await Promise.all(this.live().map((s) => s.rpc.call<MetricsSnapshot>('metrics').catch(() => undefined)));
    const own: MetricsSnapshot = {
      counters: {},
      histograms: {},
      gauges: [{ name: 'gate_unpinned_module_bytes', help: 'Bytes of stored modules nothing refers to (server.unpinnedmodules).', values: [['', this.unpinnedBytes()]] }],
      memory: { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, external: 0 },
    };
    return renderMetrics([own, ...snapshots.filter((s): s is MetricsSnapshot => s !== undefined)]);
  }

  private unpinnedBytes(): number {
    return this.store.unreferencedModules().reduce((n, m) => n + m.size, 0);
  }

  /**
   * Keep the modules nothing refers to (uploaded for a call, fetched from a
   * source, unpinned) below server.unpinnedmodules: those used longest ago
   * go first, none younger than a few seconds (it may be about to be pinned).
   */
  private trimUnpinned(): void {
    if (this.phase.name !== 'serving') return;
    const budget = this.config.server.unpinnedmodules * MIB;
    let unpinned: { hash: string; size: number; created: number }[];
    try {
      unpinned = this.store.unreferencedModules();
    } catch (error) {
      this.log.warn('unpinned modules could not be listed', { error: (error as Error).message });
      return;
    }
    let total = unpinned.reduce((n, m) => n + m.size, 0);
    if (total <= budget) return;
    const young = Date.now() - YOUNG_SECONDS * 1000;
    const used = (m: { hash: string; created: number }) => Math.max(m.created, this.lastUsed.get(m.hash) ?? 0);
    unpinned.sort((a, b) => used(a) - used(b));
    for (const m of unpinned) {
      if (total <= budget) break;
      if (used(m) > young) continue;
      this.store.forgetSources(m.hash);
      if (this.store.collectModule(m.hash)) {
        total -= m.size;
        this.lastUsed.delete(m.hash);
        for (const s of this.live()) s.rpc.note('collected', { hash: m.hash });
      }
    }
  }

  private watch(): void {
    const now = performance.now();
    // If this thread itself was held up, answers may be waiting in its queue: judge next time.
    const late = now - this.lastTick > HEARTBEAT * 2 + 100;
    this.lastTick = now;
    const stuckAfter = this.config.runtime.watchdog * 1000;
    const cap = this.config.runtime.workermemory > 0 ? this.config.runtime.workermemory * MIB : undefined;
    for (const s of this.live()) {
      if (s.exitCode !== undefined) continue; // it ended after its shutdown
      const limit = s.serving ? stuckAfter : START_TIMEOUT;
      if (!late && now - s.lastAnswer > limit) {
        this.lose(s, 'stuck', `worker ${s.index} ${s.serving ? 'stopped answering heartbeats' : 'did not start'} for ${Math.round(now - s.lastAnswer)} ms`);
        continue;
      }
      const rss = cap === undefined ? undefined : s.rss();
      if (cap !== undefined && rss !== undefined && rss > cap) {
        const mib = Math.round(cap / MIB);
        this.lose(s, 'memory', `worker ${s.index} used more than ${mib} MiB (runtime.workermemory = ${mib})`);
      } else {
        s.ping();
      }
    }
  }

  /**
   * A shard is lost: kill it, end the persistent instance in its slice
   * naming the limit, restore its other persistent instances on the other
   * shards from their last checkpoints, and start a replacement.
   */
  private lose(shard: ShardProcess, kind: LossKind, message: string): void {
    if (shard.gone) return;
    void shard.kill();
    this.ledger.drop(shard.index);
    const mine: (InstanceKey & Placement)[] = [];
    for (const [key, p] of this.placements) {
      if (p.shard !== shard.index) continue;
      const [principal, id] = splitKey(key);
      mine.push({ principal, id, slot: p.slot });
      this.placements.delete(key);
    }
    for (const [key, s] of this.reserved) if (s === shard.index) this.reserved.delete(key);
    const offender = shard.current === undefined ? undefined : mine.find((p) => p.slot === shard.current);
    const r = this.config.runtime;
    const offence = offenceText(kind, message, {
      stuckSeconds: r.watchdog,
      heapMiB: r.workerheap > 0 ? r.workerheap : undefined,
      watchdogKey: 'runtime.watchdog',
      heapKey: 'runtime.workerheap',
    });
    this.log.error('worker lost', { worker: shard.index, kind, message, instances: mine.map((p) => p.id), offender: offender?.id });
    if (offender) {
      const rec = this.store.instance(offender.principal, offender.id);
      if (rec) this.store.putInstance({ ...rec, status: { state: State.KILLED, cause: Cause.NORMAL, result: 0, error: offence }, resume: false });
    }
    if (this.phase.name === 'closing') return; // the others' records stay as a crash leaves them: the next start resumes them
    const replacement = this.spawn(shard.index, this.port);
    const adopt = async () => {
      const others = this.live().filter((s) => s.serving);
      const targets = others.length > 0 ? others : [await this.within(replacement.ready, `worker ${shard.index} did not start`).then(() => replacement)];
      const byShard = new Map<ShardProcess, InstanceKey[]>();
      mine.forEach((p, i) => {
        const t = targets[i % targets.length];
        byShard.set(t, [...(byShard.get(t) ?? []), { principal: p.principal, id: p.id }]);
      });
      await Promise.all([...byShard].map(([t, instances]) => t.rpc.call('adopt', { instances, restored: true })));
    };
    void replacement.ready.then(
      () => {
        if (this.phase.name !== 'closing') this.serve(replacement);
      },
      (error: unknown) => this.log.error('worker could not be replaced', { worker: shard.index, error: (error as Error).message }),
    );
    adopt().catch((error: unknown) => this.log.error('instances of a lost worker could not be restored', { worker: shard.index, error: (error as Error).message }));
  }
}

/** Fails as a plain listen would (EADDRINUSE) when anything, shards of another server included, is on the address. */
function portIsFree(listen: { host: string; port: number }): Promise<void> {
  const probe = net.createServer();
  return new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host: listen.host, port: listen.port }, () => probe.close(() => resolve()));
  });
}

function keyOf(k: InstanceKey): string {
  return `${k.principal} ${k.id}`;
}

function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf(' ');
  return [key.slice(0, i), key.slice(i + 1)];
}

