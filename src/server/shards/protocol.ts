// What the supervisor and its shards say to each other (rpc.ts carries it
// over each shard's IPC channel, V8-serialized). None of it is on the path
// of a call: a shard asks only for what it does not hold (a module it has
// not compiled, more of a quota than its grant) and tells where its
// principals' instances are.

import type { Config } from '../config/config.ts';
import type { Usage } from '../api/quota.ts';
import type { MetricsSnapshot } from '../obs/metrics.ts';

/** How a shard is set up: the first message it gets. */
export interface ShardSetup {
  /** Its number, kept by its replacement. */
  index: number;
  shards: number;
  dataDir: string;
  config: Config;
  /** The public address; every shard listens on it with SO_REUSEPORT. */
  listen: { host: string; port: number };
  /** Unix sockets of the shards by number, on which they take requests passed on by the others (trusted: mode 0600 in a 0700 directory). */
  peers: string[];
  /** Accept unsigned local tokens (access.local). */
  local: boolean;
  /** Tests only: the shard obeys `block`. */
  testHooks?: boolean;
  /** Log lines go to the supervisor (JSON) instead of stderr. */
  relayLogs?: boolean;
}

/** An instance as the supervisor knows it: where it is, and its number there (slice reports name it). */
export interface Placement {
  principal: string;
  id: string;
  slot: number | undefined;
}

export interface InstanceKey {
  principal: string;
  id: string;
}

// Shard → supervisor calls.
export interface ShardCalls {
  /** Prepare a module (or a snapshot's program) for an owner: exec/worker/protocol.ts's PrepareReply. */
  prepare: { bytes: Uint8Array; pages: number; owner: string };
  /** More of a quota: quota-ledger.ts's AcquireResult. */
  acquire: { key: string; usage: Usage; limits: Usage };
  /** Hold what exists already: the grant. */
  claim: { key: string; usage: Usage };
  /** Hold a principal's instance id for a create: whether it was free. */
  reserve: InstanceKey;
  /** The shard that has an instance (a number), or null. */
  locate: InstanceKey;
  /** A principal's instances on every shard (their info), sorted by id. */
  list: { principal: string };
  /** Every shard's metrics, merged, as Prometheus text. */
  metrics: null;
  /** Admit a principal new to this server from a source (api/newcomers.ts), or fail with 429. */
  newcomer: { principal: string; source: string | undefined };
  /** A principal unpinned a module: answered once the other shards forgot the pin. */
  unpinned: { principal: string; hash: string };
}

// Supervisor → shard calls.
export interface SupervisorCalls {
  /** Load instance records (at startup, or those of a lost shard) and run those that were running. */
  adopt: { instances: InstanceKey[]; restored: boolean };
  /** Give back what is not used of a quota key (the supervisor's decision `seq`): the grant kept. */
  recall: { key: string; seq: number };
  /** Whether the shard has an instance. */
  has: InstanceKey;
  /** Forget that a principal has a module pinned. */
  'forget-pin': { principal: string; hash: string };
  /** The shard's instances of a principal (their info). */
  list: { principal: string };
  /** The shard's metrics. */
  metrics: null;
  /** Stop serving: persistent instances are suspended and checkpointed, the others killed. */
  shutdown: null;
}

// Notes (no answer): shard → supervisor.
export interface ShardNotes {
  /** Listening (on `port`). */
  ready: { port: number };
  pong: { seq: number };
  /** The shard holds `grant` of a quota key now. */
  grant: { key: string; grant: Usage };
  placed: Placement & { persistent: boolean };
  gone: InstanceKey;
  broadcast: { channel: string; data: unknown };
  /** A log line, when the supervisor relays the shards' logs. */
  log: { line: string };
  /** Stored modules used lately (the cache of unpinned modules keeps those used last). */
  used: { hashes: string[] };
}

// Notes: supervisor → shard.
export interface SupervisorNotes {
  setup: ShardSetup;
  ping: { seq: number };
  /** The instances are loaded: serve requests (until now they are answered 503). */
  serve: null;
  broadcast: { channel: string; data: unknown };
  /** A module nothing referred to was removed from the store. */
  collected: { hash: string };
  /** Tests only: block for good, in the slice of the instance numbered `slot`. */
  block: { slot: number | undefined; how: 'loop' | 'heap' };
}

export type { MetricsSnapshot };
