import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportedResolution, resolutionFor, roundTime, timeResolution } from './time.ts';

test('resolution R is the smallest power of two above T', () => {
  assert.equal(resolutionFor(1000), 1024n); // Gate's tests: 1 µs
  assert.equal(resolutionFor(10_000_000), 16_777_216n); // default 10 ms
  assert.equal(resolutionFor(1_000_000_000n), 1_073_741_824n); // 1 s
  assert.equal(resolutionFor(1), 2n);
  assert.equal(resolutionFor(1023), 1024n);
  assert.equal(resolutionFor(1024), 2048n); // strictly greater
  assert.equal(timeResolution, resolutionFor);
});

test('T ≤ 0 or above one second means one second', () => {
  for (const t of [0, -1, -5_000_000_000n, 1_000_000_001, 5_000_000_000n]) {
    assert.equal(resolutionFor(t), 1_073_741_824n, String(t));
  }
});

test('clock_res_get reports R capped at 10^9', () => {
  assert.equal(reportedResolution(1024n), 1024n);
  assert.equal(reportedResolution(16_777_216n), 16_777_216n);
  assert.equal(reportedResolution(1_073_741_824n), 1_000_000_000n);
});

test('rounding keeps seconds and rounds the sub-second part down', () => {
  assert.equal(roundTime(1_700_000_000_123_456_789n, 1024n), 1_700_000_000_123_456_512n);
  assert.equal(roundTime(5_999_999_999n, 16_777_216n), 5_989_855_744n);
  assert.equal(roundTime(3_999_999_999n, 1_073_741_824n), 3_000_000_000n);
  assert.equal(roundTime(1023n, 1024n), 0n);
  assert.equal(roundTime(0n, 1024n), 0n);
  assert.equal(roundTime((1n << 64n) - 1n, 1024n) % 1_000_000_000n % 1024n, 0n);
});
