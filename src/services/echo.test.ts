import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoService } from './echo.ts';
import { Registry } from './registry.ts';
import { Harness, testContext } from './servicetest.ts';

test('test service echoes calls (hello.wasm test_ext)', () => {
  const r = new Registry().register(echoService);
  const h = new Harness(r.lookup('test', testContext)!);
  const content = new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1]);
  h.call(content);
  h.info(content);
  assert.deepEqual(h.take(), [{ call: content, index: 0 }]);
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
});
