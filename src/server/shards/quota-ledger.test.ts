// The quota grants of a server's shards: the shards' grants never add up to more
// than the limits, whatever order the messages between the supervisor and
// the shards arrive in (each direction in order, as on an IPC channel; an
// answer is sent a few promise hops after the supervisor decides it, so a
// recall decided next can be sent ahead of it, as with the real channel).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Usage } from '../api/quota.ts';
import { LeasedQuota } from './leased-quota.ts';
import { QuotaLedger } from './quota-ledger.ts';

/** A repeatable sequence of numbers in [0, 1). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

const LIMITS: Usage = { instances: 64, running: Infinity, memory: Infinity };

/** Messages to one side, delivered when the test says (or at random), in order. */
class Channel {
  private readonly queue: (() => void)[] = [];
  send(deliver: () => void): void {
    this.queue.push(deliver);
  }
  get pending(): number {
    return this.queue.length;
  }
  deliverOne(): boolean {
    const m = this.queue.shift();
    m?.();
    return m !== undefined;
  }
}

/** Two shards and a supervisor wired by channels; `usage` is what each shard holds. */
function shards() {
  const toShard = [new Channel(), new Channel()];
  const toSupervisor = [new Channel(), new Channel()];
  const usage = [0, 0];
  const quotas: LeasedQuota[] = [];
  const ledger = new QuotaLedger({
    recall: (shard, key, seq) =>
      new Promise((resolve) => toShard[shard].send(() => {
        const kept = quotas[shard].recall(key, { instances: usage[shard], running: 0, memory: 0 }, seq);
        toSupervisor[shard].send(() => resolve(kept));
      })),
    shards: () => 2,
  });
  for (const i of [0, 1]) {
    quotas.push(
      new LeasedQuota(
        {
          acquire: (key, u, l) =>
            new Promise((resolve) => toSupervisor[i].send(() => void ledger.acquire(i, key, u, l).then((r) => toShard[i].send(() => resolve(r))))),
          claim: (key, u) => new Promise((resolve) => toSupervisor[i].send(() => void ledger.claim(i, key, u).then((r) => toShard[i].send(() => resolve(r))))),
          release: (key, g) => toSupervisor[i].send(() => ledger.set(i, key, g)),
        },
        2,
      ),
    );
  }
  /** Create one instance on shard i if the quota lets it. */
  async function create(i: number): Promise<boolean> {
    for (;;) {
      const want = { instances: usage[i] + 1, running: 0, memory: 0 };
      if (quotas[i].fits('p', want, LIMITS)) {
        usage[i]++;
        return true;
      }
      if ((await quotas[i].widen('p', want, LIMITS)) !== undefined) return false;
    }
  }
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  /** Deliver every message, in order, until `done` settles. */
  async function pump<T>(done: Promise<T>): Promise<T> {
    let settled = false;
    void done.finally(() => (settled = true));
    for (let i = 0; !settled; i++) {
      if (i > 100_000) throw new Error('the messages never settle');
      for (const ch of [...toShard, ...toSupervisor]) ch.deliverOne();
      await settle();
    }
    return done;
  }
  return { toShard, toSupervisor, usage, quotas, ledger, create, settle, pump };
}

describe('quota grants across shards', () => {
  it('keeps the sum of what shards hold within the limit under random delivery, and grants all of it', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const random = lcg(trial + 1);
      const c = shards();
      let most = 0;
      const creates: Promise<boolean>[] = [];
      for (let step = 0; step < 3000; step++) {
        const r = random();
        if (r < 0.1) creates.push(c.create(random() < 0.5 ? 0 : 1));
        else if (r < 0.15) {
          const i = random() < 0.5 ? 0 : 1;
          if (c.usage[i] > 0) {
            c.usage[i]--;
            c.quotas[i].settle('p', { instances: c.usage[i], running: 0, memory: 0 });
          }
        } else {
          const all = [...c.toShard, ...c.toSupervisor];
          all[Math.floor(random() * all.length)].deliverOne();
        }
        if (step % 7 === 0) await c.settle();
        most = Math.max(most, c.usage[0] + c.usage[1]);
        assert.ok(c.usage[0] + c.usage[1] <= 64, `${c.usage[0] + c.usage[1]} held against a limit of 64`);
      }
      await c.pump(Promise.all(creates));
      assert.ok(most <= 64);
      // All of the limit can be had: fill it from one shard.
      for (let n = 0; c.usage[0] + c.usage[1] < 64 && n < 200; n++) await c.pump(c.create(0));
      assert.equal(c.usage[0] + c.usage[1], 64);
    }
  });
});
