import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityService } from './identity.ts';
import { Harness, testContext } from './servicetest.ts';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

test('identity: principal, instance, other calls, info', () => {
  const ctx = { ...testContext, instance: 'ABCDEF01-0000-4000-8000-000000000000', principal: 'local' };
  const h = new Harness(identityService, null, ctx);
  h.call(new Uint8Array([0]));
  h.call(new Uint8Array([1, 99])); // the rest of the content is ignored
  h.call(new Uint8Array([2]));
  h.call();
  h.info(new Uint8Array([0]));
  const seen = h.take();
  assert.deepEqual(
    seen.map((s) => ('call' in s ? text(s.call) : 'other')),
    ['local', 'abcdef01-0000-4000-8000-000000000000', '', ''],
  );
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
});

test('identity: byte-exact reply to a principal call (services.md §4.3)', () => {
  const h = new Harness(identityService, null, { ...testContext, principal: 'local' });
  h.handle(new Uint8Array([9, 0, 0, 0, 5, 0, 0, 0, 0]));
  assert.deepEqual([...h.sent[0]], [0x0d, 0, 0, 0, 5, 0, 0, 0, 0x6c, 0x6f, 0x63, 0x61, 0x6c]);
});
