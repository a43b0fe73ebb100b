// A first restore on the host that prepared the program reuses that
// preparation instead of instrumenting the snapshot's program part again.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { Registry } from '../../src/services/index.ts';
import { guest } from '../helpers.ts';

async function suspendedHash(cache: ModuleCache) {
  const compiled = await cache.get(guest('examples/hash.wasm'));
  const program = new ProgramInstance({
    engine: nodeEngine(),
    compiled,
    registry: new Registry(),
    context: { instance: crypto.randomUUID(), scope: [] },
    function: 'hash_debug',
  });
  program.instance.suspendAfterFuel(20_000_000);
  assert.equal((await program.run()).state, 'SUSPENDED');
  return { compiled, snapshot: await snapshotInstance(program) };
}

async function finish(snapshot: Uint8Array, cache: ModuleCache) {
  const chunks: Uint8Array[] = [];
  const restored = await restoreInstance(snapshot, {
    cache,
    engine: nodeEngine(),
    registry: new Registry(),
    context: { instance: crypto.randomUUID(), scope: [] },
    debug: (c) => chunks.push(c),
  });
  const status = await restored.run();
  return { restored, status, log: Buffer.concat(chunks).toString() };
}

const HASH = 'c16b02b158899315b165a22ba9385cee557172daf8789475abb4cd682c46ca56\n';

describe('restore and the module cache', () => {
  it('reuses the original program’s preparation, and the program finishes exactly', async () => {
    const cache = new ModuleCache(null);
    const { compiled, snapshot } = await suspendedHash(cache);
    const { restored, status, log } = await finish(snapshot, cache);
    assert.equal(restored.compiled, compiled);
    assert.deepEqual(status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.ok(HASH.endsWith(log) && log.length > 0, log);
  });

  it('prepares the program part when the original was never prepared here', async () => {
    const { compiled, snapshot } = await suspendedHash(new ModuleCache(null));
    const { restored, status } = await finish(snapshot, new ModuleCache(null));
    assert.notEqual(restored.compiled.program, compiled.program);
    assert.equal(status.state, 'HALTED');
  });
});
