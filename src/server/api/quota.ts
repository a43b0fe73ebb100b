// How much of a principal's limits (or the anonymous callers' together)
// this process may hold. A single server process holds all of it
// (LocalQuota). When several processes serve one data directory, each holds
// a grant from the supervisor that it spends without asking, and asks for
// more only when a create or resume would pass it (shards/leased-quota.ts):
// the grants never add up to more than the limits, so concurrent requests
// on different processes cannot pass a limit together.

/** Instances held (in any state), running ones, and the sum of the memory limits of the running ones. */
export interface Usage {
  instances: number;
  running: number;
  memory: number;
}

export type Dimension = keyof Usage;

/** The quota key of anonymous callers (principal ids are `ed25519:…` or `local`). */
export const ANONYMOUS = 'anonymous';

/** The quota key of the server's instances in all (runtime.maxinstances per process, times the processes). */
export const SERVER = 'server';

export const NO_USAGE: Usage = Object.freeze({ instances: 0, running: 0, memory: 0 });

export interface Quota {
  /** Whether this process may hold `usage` of `key` (what it would hold after a change) without asking. */
  fits(key: string, usage: Usage, limits: Usage): boolean;
  /** Ask for room for `usage`: resolves undefined when granted, or the dimension whose limit leaves no room. */
  widen(key: string, usage: Usage, limits: Usage): Promise<Dimension | undefined>;
  /** Hold what exists already (instances loaded or adopted), whatever the limits. */
  claim(key: string, usage: Usage): Promise<void>;
  /** This process holds `usage` of `key` now (something stopped or went): room it does not need may go to others. */
  settle(key: string, usage: Usage): void;
}

/** The first dimension in which `usage` passes `limits`. */
export function exceeded(usage: Usage, limits: Usage): Dimension | undefined {
  if (usage.instances > limits.instances) return 'instances';
  if (usage.running > limits.running) return 'running';
  if (usage.memory > limits.memory) return 'memory';
  return undefined;
}

/** A server in one process: the limits themselves are its grant. */
export class LocalQuota implements Quota {
  fits(_key: string, usage: Usage, limits: Usage): boolean {
    return exceeded(usage, limits) === undefined;
  }

  widen(_key: string, usage: Usage, limits: Usage): Promise<Dimension | undefined> {
    return Promise.resolve(exceeded(usage, limits));
  }

  claim(): Promise<void> {
    return Promise.resolve();
  }

  settle(): void {}
}
