// SQLite as a Gate program (guest/sqlite/sqlite.wasm): the committed build
// imports only Gate's ABI, and, through the real engine, its queries give
// the documented result line, also across a suspend, snapshot and restore.
//
// Preparing this 1 MiB program takes tens of seconds with today's engine, so
// the engine tests run only when GATE_TEST_SQLITE is set (for example
// `GATE_TEST_SQLITE=1 node --test test/runtime/sqlite.test.ts`). They use
// the shared module cache, so a later run is fast.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { defaultCacheDir, ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { Registry } from '../../src/services/index.ts';
import { gate, makeHome, type TestHome } from '../cli/helpers.ts';
import { guest, root } from '../helpers.ts';

const PROGRAM = 'sqlite/sqlite.wasm';
const QUERIES = 'sqlite: 50000 items, 3239 result rows, checksum 8d5242534545ea7c\n';
const QUERIES_SMALL = 'sqlite: 500 items, 146 result rows, checksum 815cfd35e28ff49d\n';

describe('sqlite.wasm', () => {
  it('is a Gate program of at least 900 KiB that imports only the Gate ABI', () => {
    const bytes = guest(PROGRAM);
    assert.ok(bytes.byteLength >= 900 * 1024, `${bytes.byteLength} bytes`);
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name} ${i.kind}`);
    assert.deepEqual(imports.sort(), [
      'env.__gate_io_65536 function',
      'wasi_snapshot_preview1.clock_time_get function',
      'wasi_snapshot_preview1.fd_write function',
      'wasi_snapshot_preview1.proc_exit function',
    ]);
    const exports = WebAssembly.Module.exports(module).map((e) => `${e.name} ${e.kind}`);
    assert.deepEqual(exports.sort(), ['memory memory', 'queries function', 'queries_debug function', 'queries_small function']);
  });
});

describe('sqlite.wasm through the engine', { skip: !process.env.GATE_TEST_SQLITE && 'set GATE_TEST_SQLITE=1 (preparation takes tens of seconds)' }, () => {
  let home: TestHome;
  before(() => {
    home = makeHome();
  });
  after(() => home.cleanup());

  it('gate call --in-process prints the result line to the client and the debug log', async () => {
    const r = await gate(home, ['call', '--in-process', '--debug', path.join(root, 'guest', PROGRAM), 'queries']);
    assert.equal(r.stderr, QUERIES);
    assert.equal(r.stdout, QUERIES);
    assert.equal(r.code, 0);
    const small = await gate(home, ['call', '--in-process', '--debug', path.join(root, 'guest', PROGRAM), 'queries_small']);
    assert.equal(small.stderr, QUERIES_SMALL);
    assert.equal(small.code, 0);
  });

  it('suspended mid-run, snapshotted and restored, it finishes with the same result', async () => {
    // The call above filled the shared disk cache: no second preparation.
    const cache = new ModuleCache(defaultCacheDir());
    const engine = nodeEngine();
    const registry = new Registry();
    const compiled = await cache.get(guest(PROGRAM));
    let log = '';
    const first = new ProgramInstance({
      engine,
      compiled,
      registry,
      context: { instance: crypto.randomUUID(), scope: [] },
      function: 'queries_debug',
      debug: (c) => (log += Buffer.from(c).toString()),
    });
    first.instance.suspendAfterFuel(50_000_000);
    assert.equal((await first.run()).state, 'SUSPENDED');
    assert.equal(log, '');

    const snapshot = await snapshotInstance(first);
    let restoredLog = '';
    const restored = await restoreInstance(snapshot, {
      cache,
      engine,
      registry,
      context: { instance: crypto.randomUUID(), scope: [] },
      debug: (c) => (restoredLog += Buffer.from(c).toString()),
    });
    assert.deepEqual(await restored.run(), { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.equal(restoredLog, QUERIES);
  });
});
