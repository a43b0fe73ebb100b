// A shard of gate-server (see supervisor.ts): a whole server in one process
// that listens on the public port beside the other shards (SO_REUSEPORT),
// serves what the kernel hands it, and runs the instances of its requests
// on its own engine. It asks the supervisor only for what it does not hold:
// a module it has not compiled (prepared by the preparer processes), more
// of a quota than its grant, where an instance of another shard is. A
// request about an instance on another shard goes there over that shard's
// Unix socket (http/forward.ts).
//
// It ends when the supervisor does (a guard thread kills it even when a
// program holds its main thread), and it tells whose time slice it is in,
// so that the watchdog blames the right instance.

import http from 'node:http';
import type { ShardLink } from '../api/context.ts';
import type { InstanceDirectory } from '../api/instances.ts';
import type { Admission } from '../api/newcomers.ts';
import type { Usage } from '../api/quota.ts';
import { blockForever, ChannelRelay, startGuard } from '../exec/worker/child.ts';
import type { PrepareReply } from '../exec/worker/protocol.ts';
import { hibernationOf } from '../exec/executor.ts';
import { trustConnection } from '../http/forward.ts';
import { Logger } from '../obs/log.ts';
import { assembleParts, createFrontend, listen, removeSocket, serving, type RunningServer } from '../server.ts';
import type { ServerParts } from '../api/context.ts';
import { SqliteInventory } from '../store/sqlite-inventory.ts';
import { Store } from '../store/store.ts';
import { RecentMap } from '../util/recent-map.ts';
import { startServices, type RunningServices } from '../../services/node/registry.ts';
import type { InstanceKey, ShardSetup, SupervisorCalls, SupervisorNotes } from './protocol.ts';
import { LeasedQuota } from './leased-quota.ts';
import type { AcquireResult } from './quota-ledger.ts';
import { Rpc, type Message } from './rpc.ts';
import { ShardExecutor } from './shard-executor.ts';

/** Principals admitted lately, kept so that a known caller is not asked about again. */
const ADMITTED_KEPT = 100_000;
/** Milliseconds between the reports of stored modules used. */
const USED_REPORT_INTERVAL = 1000;

const slice = startGuard();
// A terminal's Ctrl-C reaches the whole process group: the supervisor decides how the shards stop.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

type Shard = {
  setup: ShardSetup;
  parts: ServerParts;
  quota: LeasedQuota;
  running: RunningServer;
  open: () => void;
  relay: ChannelRelay;
};

let shard: Shard | undefined;
let starting: Promise<Shard> | undefined;

const rpc = new Rpc(
  (m) => {
    if (process.connected) process.send!(m);
  },
  {
    call: (kind, body) => answer(kind as keyof SupervisorCalls, body),
    note: (kind, body) => heed(kind as keyof SupervisorNotes, body),
  },
);
process.on('message', (m: Message) => rpc.receive(m));

/** New principals are admitted by the supervisor (one bucket per source for the whole server); known ones here. */
class SupervisedAdmission implements Admission {
  private readonly admitted = new RecentMap<string, true>(ADMITTED_KEPT);
  private readonly perMinute: number;

  constructor(perMinute: number) {
    this.perMinute = perMinute;
  }

  admit(principal: string, source: string | undefined): void | Promise<void> {
    if (this.perMinute <= 0 || this.admitted.get(principal)) return;
    return rpc.call('newcomer', { principal, source }).then(() => this.admitted.set(principal, true));
  }
}

async function start(setup: ShardSetup): Promise<Shard> {
  const { config } = setup;
  const log = setup.relayLogs
    ? new Logger(config.log.level, (line) => rpc.note('log', { line }))
    : new Logger(config.log.level, { format: config.log.format });
  const store = new Store(setup.dataDir, { shared: true });
  const inventory = new SqliteInventory(store);
  let services: RunningServices | undefined;
  try {
    services = await startServices(config.service, { log: (message) => log.warn(message) });
    const executor: ShardExecutor = new ShardExecutor({
      registry: services.registry,
      index: setup.index,
      slice,
      // Each shard's memory pool holds its live instances; persistent ones that wait hibernate to the data dir.
      maxInstances: { value: config.runtime.maxinstances, key: `runtime.maxinstances = ${config.runtime.maxinstances}` },
      hibernation: hibernationOf(config, setup.dataDir),
      prepare: (bytes, pages, owner) => rpc.call<PrepareReply>('prepare', { bytes, pages, owner }),
      tableBudget: config.runtime.workerheap > 0 ? { bytes: config.runtime.workerheap * 1024 * 1024 * 0.7, key: `runtime.workerheap = ${config.runtime.workerheap} MiB` } : undefined,
    });
    const quota = new LeasedQuota(
      {
        acquire: (key, usage, limits) => rpc.call<AcquireResult>('acquire', { key, usage, limits }),
        claim: (key, usage) => rpc.call<{ grant: Usage; seq: number }>('claim', { key, usage }),
        release: (key, grant) => rpc.note('grant', { key, grant }),
      },
      setup.shards,
    );
    const directory: InstanceDirectory = {
      reserve: (principal, id) => rpc.call<boolean>('reserve', { principal, id }),
      placed: (inst) => rpc.note('placed', { principal: inst.principal!, id: inst.id, slot: executor.slotOfInstance(inst.exec), persistent: !inst.transient }),
      gone: (principal, id) => rpc.note('gone', { principal, id }),
    };
    const link: ShardLink = {
      index: setup.index,
      locate: (principal, id) => rpc.call<number | null>('locate', { principal, id }),
      list: (principal) => rpc.call<Record<string, unknown>[]>('list', { principal }),
      metrics: () => rpc.call<string>('metrics'),
      peer: (i) => setup.peers[i],
      unpinned: (principal, hash) => rpc.call('unpinned', { principal, hash }),
    };
    // Stored modules used are told in batches: the supervisor keeps the cache of unpinned modules.
    const used = new Set<string>();
    setInterval(() => {
      if (used.size === 0) return;
      rpc.note('used', { hashes: [...used] });
      used.clear();
    }, USED_REPORT_INTERVAL).unref();

    const frontend = createFrontend(config);
    const port = await listen(frontend.server, setup.listen, true);
    const passedOn = http.createServer();
    passedOn.on('connection', trustConnection);
    frontend.attach(passedOn);
    const socket = setup.peers[setup.index];
    removeSocket(socket);
    await listen(passedOn, { path: socket });

    const parts = assembleParts({
      config,
      store,
      inventory,
      // One server: the supervisor made its uuid, and every shard writes its records as that server's.
      serverId: store.serverUuid(config.server.uuid),
      executor,
      log,
      local: setup.local,
      listen: setup.listen,
      port,
      // Live ones are bounded per shard (runtime.maxinstances: its memory pool); hibernated ones need no memory.
      maxInstances: { value: config.server.maxinstances, key: `server.maxinstances = ${config.server.maxinstances}` },
      unpinned: { elsewhere: (hash) => used.add(hash) },
      quota,
      directory,
      newcomers: new SupervisedAdmission(config.access.newprincipals),
      shards: link,
    });
    parts.instances.setLimits((principal) => parts.policy.limits({ principal: { id: principal, key: new Uint8Array(32) }, scope: [] }));
    const running = serving(parts, frontend, '', async () => {
      await new Promise<void>((resolve) => passedOn.close(() => resolve()));
      passedOn.closeAllConnections();
      removeSocket(socket);
      services?.close();
      store.close();
    });
    const relay = new ChannelRelay(config.service.peer.enabled ? [config.service.peer.channel] : [], (channel, data) => rpc.note('broadcast', { channel, data }));
    rpc.note('ready', { port });
    return { setup, parts, quota, running, open: () => frontend.open(parts), relay };
  } catch (error) {
    services?.close();
    store.close();
    throw error;
  }
}

function whenStarted(): Promise<Shard> {
  if (!starting) return Promise.reject(new Error('worker is not set up'));
  return starting;
}

async function answer(kind: keyof SupervisorCalls, body: unknown): Promise<unknown> {
  const s = await whenStarted();
  const { instances, inventory } = s.parts;
  switch (kind) {
    case 'adopt': {
      const b = body as SupervisorCalls['adopt'];
      const records = [];
      for (const k of b.instances) {
        const rec = await inventory.instance(k.principal, k.id);
        if (rec) records.push(rec);
      }
      await instances.adopt(records, b.restored);
      return null;
    }
    case 'recall': {
      const { key, seq } = body as SupervisorCalls['recall'];
      return s.quota.recall(key, instances.held(key), seq);
    }
    case 'forget-pin': {
      const b = body as SupervisorCalls['forget-pin'];
      s.parts.modules.forgetPin(b.principal, b.hash);
      return null;
    }
    case 'has': {
      const k = body as InstanceKey;
      return instances.has(k.principal, k.id);
    }
    case 'list':
      return (await instances.list((body as SupervisorCalls['list']).principal)).map((i) => i.info());
    case 'metrics':
      return s.parts.metrics.snapshot();
    case 'shutdown':
      await s.running.close();
      // Gone once the answer is on its way (the supervisor kills what is left after a while).
      setTimeout(() => process.exit(0), 20).unref();
      return null;
  }
  throw new Error(`unknown call from the supervisor: ${String(kind)}`);
}

function heed(kind: keyof SupervisorNotes, body: unknown): void {
  switch (kind) {
    case 'setup':
      starting = start(body as ShardSetup);
      starting.then(
        (s) => (shard = s),
        (error: unknown) => {
          process.stderr.write(`gate-server: worker ${(body as ShardSetup).index} could not start: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
      return;
    case 'ping':
      rpc.note('pong', body);
      return;
    case 'serve':
      shard?.open();
      return;
    case 'broadcast': {
      const b = body as SupervisorNotes['broadcast'];
      shard?.relay.deliver(b.channel, b.data);
      return;
    }
    case 'collected':
      shard?.parts.modules.forget((body as SupervisorNotes['collected']).hash);
      return;
    case 'block': {
      // Test hook: stop answering for good, as a program V8 cannot interrupt would, in that instance's slice.
      if (!shard?.setup.testHooks) return;
      const b = body as SupervisorNotes['block'];
      if (b.slot !== undefined) slice.report(b.slot);
      blockForever(b.how);
    }
  }
}
