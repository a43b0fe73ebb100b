// Time resolution and rounding (abi.md §2.3).

const SECOND = 1_000_000_000n;

/**
 * Effective resolution R for a policy resolution T (ns): the smallest power
 * of two strictly greater than T. T ≤ 0 or T > 1 s counts as 1 s.
 */
export function resolutionFor(policyNs: bigint | number): bigint {
  let t = typeof policyNs === 'bigint' ? policyNs : BigInt(Math.trunc(policyNs));
  if (t <= 0n || t > SECOND) t = SECOND;
  let r = 1n;
  while (r <= t) r <<= 1n;
  return r;
}

/** Alias of resolutionFor. */
export const timeResolution = resolutionFor;

/** What clock_res_get reports: R, capped at one second. */
export function reportedResolution(r: bigint): bigint {
  return r < SECOND ? r : SECOND;
}

/**
 * Round an unsigned nanosecond count the way Gate rounds timestamps and
 * timeouts: whole seconds stay exact, the part within the second goes down to
 * a multiple of R (with R ≥ 2^30 it vanishes).
 */
export function roundTime(ns: bigint, r: bigint): bigint {
  const sec = ns / SECOND;
  const sub = ns % SECOND;
  return sec * SECOND + (sub - (sub % r));
}
