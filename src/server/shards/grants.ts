// Arithmetic of quota grants shared by the supervisor's ledger and the
// shards' leased quotas (api/quota.ts): a dimension without a limit
// (Infinity) is never asked for, and a grant carries some slack beyond
// what was asked, so that a shard need not ask for every instance.

import type { Dimension, Usage } from '../api/quota.ts';

export const DIMENSIONS: readonly Dimension[] = ['instances', 'running', 'memory'];

export const ZERO: Usage = Object.freeze({ instances: 0, running: 0, memory: 0 });

/** Whether `grant` covers `usage` in every dimension that has a limit. */
export function covers(grant: Usage, usage: Usage, limits: Usage): boolean {
  return DIMENSIONS.every((d) => limits[d] === Infinity || usage[d] <= grant[d]);
}

/** Room granted beyond what is asked: a fraction of the limit per shard, so that the shards share it without asking each time. */
export function slack(limits: Usage, shards: number): Usage {
  const of = (limit: number) => (limit === Infinity ? 0 : Math.floor(limit / (4 * Math.max(1, shards))));
  return { instances: of(limits.instances), running: of(limits.running), memory: of(limits.memory) };
}

export function map(f: (d: Dimension) => number): Usage {
  return { instances: f('instances'), running: f('running'), memory: f('memory') };
}
