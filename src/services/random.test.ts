import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import { createRandomService, randomByteInterval, MAX_PENDING_RANDOM_CALLS } from './random.ts';
import { Harness } from './servicetest.ts';

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

test('random: byte interval rounds like Gate', () => {
  assert.equal(randomByteInterval(7680), 62.5);
  assert.equal(randomByteInterval(7), Math.ceil(480_000_000_000 / 7) / 1e6);
  assert.equal(randomByteInterval(2 ** 40), randomByteInterval(0x7fffffff));
  assert.throws(() => createRandomService({ bitsPerMinute: 0 }), RangeError);
});

test('random: due calls are answered at once with n bytes, in order; empty calls too', () => {
  let clock = 0;
  let fills = 0;
  const svc = createRandomService({ bitsPerMinute: 7680, now: () => clock, fill: (b) => b.fill(++fills) });
  const h = new Harness(svc);
  clock = 10_000; // enough credit for 16 bytes (1 s)
  h.call(new Uint8Array([16]));
  h.call(new Uint8Array([0]));
  h.call();
  assert.deepEqual(h.take(), [
    { call: new Uint8Array(16).fill(1), index: 0 },
    { call: new Uint8Array(0), index: 0 },
    { call: new Uint8Array(0), index: 0 },
  ]);
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
});

test('random: rate-limited calls wait, stay in order, and are saved with their counts', async () => {
  let clock = 0;
  const svc = createRandomService({ bitsPerMinute: 7680, now: () => clock });
  const h = new Harness(svc);
  h.call(new Uint8Array([5]));
  h.call(new Uint8Array([0])); // behind the waiting call, not before it
  h.call(new Uint8Array([7]));
  assert.equal(h.sent.length, 0);
  const saved = h.shutdown();
  assert.deepEqual([...saved], [3, 5, 0, 7]);

  // Restored: the same calls, answered in order once due.
  const r = new Harness(svc, saved);
  await until(() => {
    clock += 1000; // the fake clock moves on while we wait
    return r.sent.length === 3;
  });
  assert.deepEqual(
    r.take().map((s) => ('call' in s ? s.call.length : -1)),
    [5, 0, 7],
  );
  assert.deepEqual(r.shutdown(), new Uint8Array(0));
});

test("random: Gate's one-byte buffer restores one pending call", async () => {
  const svc = createRandomService({ bitsPerMinute: 0x7fffffff });
  const r = new Harness(svc, new Uint8Array([1]));
  await until(() => r.sent.length === 1);
  assert.equal(r.take().length, 1);
});

test('random: too many outstanding calls is an ABI violation', () => {
  const h = new Harness(createRandomService({ bitsPerMinute: 1, now: () => 0 }));
  for (let i = 0; i < MAX_PENDING_RANDOM_CALLS; i++) h.call(new Uint8Array([1]));
  assert.throws(() => h.call(new Uint8Array([1])), AbiViolation);
  h.shutdown();
});
