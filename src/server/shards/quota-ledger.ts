// The supervisor's record of the quota grants (api/quota.ts) its shards
// hold, per key (a principal, or the anonymous callers). The grants of a
// key never add up to more than its limits: a shard that asks for more gets
// it from what is free, or from what the other shards hold but do not use
// (they are asked to give it back), or is told which limit leaves no room.
// Requests about one key are handled one at a time. Every grant the
// supervisor decides is numbered: a shard that gets an answer after a later
// recall (the answer's message may trail the recall's) keeps what the
// recall left it, which is what the supervisor counts.

import type { Dimension, Usage } from '../api/quota.ts';
import { covers, DIMENSIONS, map, slack, ZERO } from './grants.ts';

export type AcquireResult = { grant: Usage; seq: number } | { short: Dimension };

export interface LedgerOptions {
  /** Ask a shard to give back what it does not use of `key` (decision `seq`): resolves with what it holds now (undefined when it is gone). */
  recall(shard: number, key: string, seq: number): Promise<Usage | undefined>;
  /** Shards serving now. */
  shards(): number;
}

export class QuotaLedger {
  private readonly options: LedgerOptions;
  private readonly grants = new Map<string, Map<number, Usage>>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private seq = 0;

  constructor(options: LedgerOptions) {
    this.options = options;
  }

  /** Shard `shard` would hold `usage` of `key` in all: grant it (with some slack) within `limits`, recalling unused grants if need be. */
  acquire(shard: number, key: string, usage: Usage, limits: Usage): Promise<AcquireResult> {
    return this.serially(key, async () => {
      let result = this.tryGrant(shard, key, usage, limits);
      if (result) return result;
      const holders = [...this.of(key).keys()].filter((s) => s !== shard);
      await Promise.all(
        holders.map(async (other) => {
          const held = await this.options.recall(other, key, ++this.seq);
          if (held === undefined) this.of(key).delete(other);
          else this.of(key).set(other, held);
        }),
      );
      result = this.tryGrant(shard, key, usage, limits);
      if (result) return result;
      const others = this.othersSum(shard, key);
      return { short: DIMENSIONS.find((d) => limits[d] !== Infinity && others[d] + usage[d] > limits[d]) ?? 'instances' };
    });
  }

  /** Grant what a shard holds already (instances it loaded or adopted), whatever the limits. */
  claim(shard: number, key: string, usage: Usage): Promise<{ grant: Usage; seq: number }> {
    return this.serially(key, async () => {
      const old = this.of(key).get(shard) ?? ZERO;
      const grant = map((d) => Math.max(old[d], usage[d]));
      this.of(key).set(shard, grant);
      return { grant, seq: ++this.seq };
    });
  }

  /** The shard let some of its grant go: it holds `grant` now. */
  set(shard: number, key: string, grant: Usage): void {
    this.of(key).set(shard, grant);
    this.forgetIfEmpty(key);
  }

  /** A shard is gone: what it held is free. */
  drop(shard: number): void {
    for (const [key, m] of this.grants) {
      m.delete(shard);
      this.forgetIfEmpty(key);
    }
  }

  /** What all shards hold of `key` (for tests and metrics). */
  held(key: string): Usage {
    return this.othersSum(-1, key);
  }

  private tryGrant(shard: number, key: string, usage: Usage, limits: Usage): AcquireResult | undefined {
    const others = this.othersSum(shard, key);
    const room = map((d) => (limits[d] === Infinity ? Infinity : limits[d] - others[d]));
    if (!covers(room, usage, limits)) return undefined;
    const extra = slack(limits, this.options.shards());
    const grant = map((d) => (limits[d] === Infinity ? 0 : Math.min(room[d], usage[d] + extra[d])));
    this.of(key).set(shard, grant);
    return { grant, seq: ++this.seq };
  }

  private othersSum(shard: number, key: string): Usage {
    const sum = { ...ZERO };
    for (const [s, g] of this.of(key)) {
      if (s === shard) continue;
      for (const d of DIMENSIONS) sum[d] += g[d];
    }
    return sum;
  }

  private of(key: string): Map<number, Usage> {
    let m = this.grants.get(key);
    if (!m) this.grants.set(key, (m = new Map()));
    return m;
  }

  private forgetIfEmpty(key: string): void {
    const m = this.grants.get(key);
    if (m && [...m.values()].every((g) => DIMENSIONS.every((d) => g[d] === 0)) && !this.queues.has(key)) this.grants.delete(key);
  }

  private serially<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const run = before.then(work, work);
    // The next request starts after a turn of the event loop: the answer to this one is sent by then, ahead
    // of any recall the next one sends (else the shard would find its answer outdated and ask again).
    const tail = run.catch(() => {}).then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) {
        this.queues.delete(key);
        this.forgetIfEmpty(key);
      }
    });
    return run;
  }
}
