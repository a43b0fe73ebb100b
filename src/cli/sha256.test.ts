import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sha256Hex } from './sha256.ts';

test('sha256Hex agrees with node:crypto at every padding boundary and on both sides of its size switch', () => {
  let seed = 20261208;
  const random = (n: number) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  const sizes = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 7002, 65536, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1, 300_000];
  for (const n of sizes) {
    const bytes = random(n);
    assert.equal(sha256Hex(bytes), createHash('sha256').update(bytes).digest('hex'), `${n} bytes`);
  }
  // A view into a larger buffer hashes only its own bytes.
  const big = random(200);
  assert.equal(sha256Hex(big.subarray(10, 90)), createHash('sha256').update(big.subarray(10, 90)).digest('hex'));
  assert.equal(sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
