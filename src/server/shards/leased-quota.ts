// A shard's quota (api/quota.ts): the grants it holds from the supervisor
// (quota-ledger.ts). Within them it creates and resumes without asking;
// past them it asks for more, one request per key at a time. What it no
// longer needs beyond some slack goes back, and when another shard needs
// room the supervisor recalls what it does not use.
//
// Every grant change is told as the absolute grant, a shard never lets a
// grant go while it asks for more of the same key, and an answer decided
// before a recall that came first is not applied, so the supervisor's
// record is never below what a shard holds.

import type { Dimension, Quota, Usage } from '../api/quota.ts';
import { covers, DIMENSIONS, map, slack, ZERO } from './grants.ts';
import type { AcquireResult } from './quota-ledger.ts';

export interface LeaseChannel {
  acquire(key: string, usage: Usage, limits: Usage): Promise<AcquireResult>;
  claim(key: string, usage: Usage): Promise<{ grant: Usage; seq: number }>;
  /** This shard holds `grant` of `key` now. */
  release(key: string, grant: Usage): void;
}

export class LeasedQuota implements Quota {
  private readonly channel: LeaseChannel;
  private readonly shards: number;
  private readonly grants = new Map<string, Usage>();
  /** The limits last seen per key (settle() has none of its own). */
  private readonly limits = new Map<string, Usage>();
  /** The request under way per key. */
  private readonly asking = new Map<string, Promise<unknown>>();
  /** The number of the supervisor's latest decision applied per key. */
  private readonly seen = new Map<string, number>();

  constructor(channel: LeaseChannel, shards: number) {
    this.channel = channel;
    this.shards = shards;
  }

  fits(key: string, usage: Usage, limits: Usage): boolean {
    this.limits.set(key, limits);
    return covers(this.grants.get(key) ?? ZERO, usage, limits);
  }

  async widen(key: string, usage: Usage, limits: Usage): Promise<Dimension | undefined> {
    this.limits.set(key, limits);
    for (;;) {
      const before = this.asking.get(key);
      if (!before) break;
      await before.catch(() => {});
    }
    // What was granted meanwhile may be enough: the caller checks again.
    if (covers(this.grants.get(key) ?? ZERO, usage, limits)) return undefined;
    const request = this.channel.acquire(key, usage, limits);
    this.asking.set(key, request);
    try {
      const result = await request;
      if ('short' in result) return result.short;
      this.apply(key, result.grant, result.seq);
      return undefined;
    } finally {
      this.asking.delete(key);
    }
  }

  async claim(key: string, usage: Usage): Promise<void> {
    for (;;) {
      const before = this.asking.get(key);
      if (!before) break;
      await before.catch(() => {});
    }
    const request = this.channel.claim(key, usage);
    this.asking.set(key, request);
    try {
      const result = await request;
      this.apply(key, result.grant, result.seq);
    } finally {
      this.asking.delete(key);
    }
  }

  settle(key: string, usage: Usage): void {
    const grant = this.grants.get(key);
    const limits = this.limits.get(key);
    if (!grant || !limits || this.asking.has(key)) return;
    const extra = slack(limits, this.shards);
    if (!DIMENSIONS.some((d) => grant[d] - usage[d] > 2 * extra[d])) return;
    const kept = map((d) => Math.min(grant[d], usage[d] + extra[d]));
    this.set(key, kept);
  }

  /** The supervisor wants back (decision `seq`) what this shard does not use of `key`, which holds `usage`: the grant it keeps. */
  recall(key: string, usage: Usage, seq: number): Usage {
    this.seen.set(key, Math.max(seq, this.seen.get(key) ?? 0));
    // Exactly what it uses (more than its grant only while a claim is on its way).
    const kept = { ...usage };
    this.grants.set(key, kept);
    if (DIMENSIONS.every((d) => kept[d] === 0)) this.grants.delete(key);
    return kept;
  }

  /** A grant decided by the supervisor, unless a later decision (a recall) came first. */
  private apply(key: string, grant: Usage, seq: number): void {
    if (seq <= (this.seen.get(key) ?? 0)) return;
    this.seen.set(key, seq);
    this.grants.set(key, grant);
  }

  private set(key: string, grant: Usage): void {
    if (DIMENSIONS.every((d) => grant[d] === 0)) this.grants.delete(key);
    else this.grants.set(key, grant);
    this.channel.release(key, grant);
  }
}
