// Everything a request handler needs, assembled once by startServer(), and
// the caller of a request: credentials (or none), principal id and limits.

import type { Credentials, Verifier } from './auth.ts';
import type { Config, Limits } from '../config/config.ts';
import type { Executor } from '../exec/executor.ts';
import type { Instances } from './instances.ts';
import type { Logger } from '../obs/log.ts';
import type { Metrics } from '../obs/metrics.ts';
import type { Modules } from './modules.ts';
import type { Admission } from './newcomers.ts';
import type { Operation, Policy } from './policy.ts';
import type { Source } from './sources.ts';
import type { Inventory } from '../store/inventory.ts';
import { requestSource } from './request-source.ts';

export interface ServerParts {
  readonly config: Config;
  /** Modules, pins and instance records: this server's own, or a cluster's shared ones. */
  readonly inventory: Inventory;
  readonly modules: Modules;
  readonly instances: Instances;
  readonly executor: Executor;
  readonly verifier: Verifier;
  readonly policy: Policy;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Configured module sources by name. */
  readonly sources: Map<string, Source>;
  /** The server's uuid, and the API document bodies, computed once (api.md §3). */
  readonly apiInfo: { uuid: string; plain: string; features: string };
  /** New principals per source address (access.newprincipals). */
  readonly newcomers: Admission;
  /** The other shard processes serving the data directory, when this one is a shard (src/server/shards/). */
  readonly shards?: ShardLink;
}

/**
 * What a shard (src/server/shards/) knows of the other shards of its server:
 * where a principal's instance lives, the lists and metrics of all, and the
 * socket on which each takes the requests passed on to it.
 */
export interface ShardLink {
  /** This shard's number. */
  readonly index: number;
  /** The shard that has a principal's instance, or null. */
  locate(principal: string, id: string): Promise<number | null>;
  /** A principal's instances on every shard (their info), sorted by id. */
  list(principal: string): Promise<Record<string, unknown>[]>;
  /** The metrics of every shard, as one Prometheus text. */
  metrics(): Promise<string>;
  /** The Unix socket of a shard's passed-on requests. */
  peer(index: number): string;
  /** A principal unpinned a module: resolves once every other shard has forgotten the pin. */
  unpinned(principal: string, hash: string): Promise<void>;
}

export interface Caller {
  readonly creds: Credentials | undefined;
  /** Principal id; undefined for anonymous callers. */
  readonly principal: string | undefined;
  readonly limits: Limits;
  readonly scope: string[];
}

/** Authorize an operation that needs a principal: absent credentials are a 401. */
export function ownerCaller(parts: ServerParts, creds: Credentials | undefined, op: Operation): Promise<Caller> {
  if (!creds) throw parts.verifier.missing();
  parts.policy.check(op, creds, () => parts.verifier.missing());
  return callerOf(parts, creds);
}

/** Authorize an operation that anonymous callers may do when the policy admits them. */
export function anyCaller(parts: ServerParts, creds: Credentials | undefined, op: Operation): Promise<Caller> {
  parts.policy.check(op, creds, () => parts.verifier.missing());
  return callerOf(parts, creds);
}

async function callerOf(parts: ServerParts, creds: Credentials | undefined): Promise<Caller> {
  if (creds) await parts.newcomers.admit(creds.principal.id, requestSource());
  return {
    creds,
    principal: creds?.principal.id,
    limits: parts.policy.limits(creds),
    scope: creds?.scope ?? [],
  };
}
