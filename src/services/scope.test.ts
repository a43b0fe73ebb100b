import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import { isValidScopeToken, programScope, scopeAllows, scopeService } from './scope.ts';
import { Harness, testContext } from './servicetest.ts';

function list(...tokens: string[]): Uint8Array {
  const parts = tokens.map((t) => Buffer.from(t));
  return Uint8Array.from([0, tokens.length, ...parts.flatMap((p) => [p.length, ...p])]);
}

test('scope: restrict narrows, never widens; reply is i16 0', () => {
  const ctx = { ...testContext, scope: ['program:system', 'x'] };
  const h = new Harness(scopeService, null, ctx);
  assert.equal(programScope(ctx), null);
  assert.ok(scopeAllows(ctx, 'program:system'));
  h.call(list('program:system', 'y'));
  assert.deepEqual(programScope(ctx), ['program:system', 'y']);
  h.call(list('y', 'x'));
  assert.deepEqual(programScope(ctx), ['y']);
  assert.ok(!scopeAllows(ctx, 'program:system'));
  assert.ok(!scopeAllows(ctx, 'y')); // not in the request scope
  const seen = h.take();
  assert.deepEqual(seen, [
    { call: new Uint8Array(2), index: 0 },
    { call: new Uint8Array(2), index: 0 },
  ]);
  // Saved: u8 count + tokens; restored by a new instance.
  const saved = h.shutdown();
  assert.deepEqual([...saved], [1, 1, 0x79]);
  assert.equal(programScope(ctx), null);
  new Harness(scopeService, saved, ctx);
  assert.deepEqual(programScope(ctx), ['y']);
});

test('scope: other calls get empty replies; info is ignored', () => {
  const h = new Harness(scopeService, null, { ...testContext });
  h.call();
  h.call(new Uint8Array([1]));
  h.info(list('x'));
  assert.deepEqual(h.take(), [
    { call: new Uint8Array(0), index: 0 },
    { call: new Uint8Array(0), index: 0 },
  ]);
});

test('scope: malformed lists and invalid tokens are ABI violations', () => {
  const h = new Harness(scopeService, null, { ...testContext });
  assert.throws(() => h.call(new Uint8Array([0])), AbiViolation);
  assert.throws(() => h.call(new Uint8Array([0, 2, 1, 0x61])), AbiViolation);
  assert.throws(() => h.call(list('a::b')), AbiViolation);
  assert.throws(() => h.call(list(':a')), AbiViolation);
  assert.throws(() => h.call(list('sp ace')), AbiViolation);
  assert.ok(isValidScopeToken('program:system'));
  assert.ok(!isValidScopeToken('x'.repeat(256)));
  assert.throws(() => new Harness(scopeService, new Uint8Array([3, 1]), { ...testContext }), /too short/);
});
