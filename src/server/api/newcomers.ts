// Principals cost nothing to make (a key pair), so under the public policy
// a client could spread its work over any number of them. New principals
// are admitted at a bounded rate per source address: a token bucket per
// source, refilled at `perMinute` a minute. Principals the server knows (they
// have pins or instances) or admitted lately pass freely.

import { HttpError } from './errors.ts';
import { RecentMap } from '../util/recent-map.ts';

/** Sources and admitted principals remembered (older ones start afresh). */
const SOURCES_KEPT = 10_000;
const ADMITTED_KEPT = 100_000;

/** Who decides whether a principal is admitted: a limiter here, or the shards' supervisor (admit() may then wait for it). */
export interface Admission {
  /** Throw 429 when `principal` is new and its source has brought too many new ones lately. */
  admit(principal: string, source: string | undefined): void | Promise<void>;
}

export class NewcomerLimiter implements Admission {
  private readonly perMinute: number;
  private readonly key: string;
  private readonly known: (principal: string) => boolean;
  private readonly buckets = new RecentMap<string, { tokens: number; at: number }>(SOURCES_KEPT);
  private readonly admitted = new RecentMap<string, true>(ADMITTED_KEPT);

  /** perMinute 0 admits everyone; `key` is the setting named in the refusal. */
  constructor(perMinute: number, key: string, known: (principal: string) => boolean) {
    this.perMinute = perMinute;
    this.key = key;
    this.known = known;
  }

  /** Throw 429 when `principal` is new and its source has brought too many new ones lately. */
  admit(principal: string, source: string | undefined): void {
    if (this.perMinute <= 0 || this.admitted.get(principal) || this.known(principal)) {
      if (this.perMinute > 0) this.admitted.set(principal, true);
      return;
    }
    const now = performance.now();
    const where = source ?? 'unknown';
    const bucket = this.buckets.get(where) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) / 60_000) * this.perMinute);
    bucket.at = now;
    this.buckets.set(where, bucket);
    if (bucket.tokens < 1) {
      const wait = Math.ceil(((1 - bucket.tokens) / this.perMinute) * 60);
      throw new HttpError(429, `too many new principals from this address (${this.key} = ${this.perMinute} per minute)`, {
        'Retry-After': String(wait),
      }).failing('RESOURCE_LIMIT');
    }
    bucket.tokens -= 1;
    this.admitted.set(principal, true);
  }
}
