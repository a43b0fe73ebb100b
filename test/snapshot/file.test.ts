// The snapshot file: refused when corrupt, truncated or made by other
// instrumentation; deterministic; zero pages cost nothing; restorable twice;
// a halted one is a plain pre-initialized module any engine can run.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import type { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { instrumentationOf } from '../../src/runtime/snapshot/instrumentation.ts';
import { writeSnapshot } from '../../src/runtime/snapshot/write.ts';
import { Registry } from '../../src/services/index.ts';
import { launch, until } from '../helpers.ts';

function restore(bytes: Uint8Array, debug?: (c: Uint8Array) => void, fn?: string): Promise<ProgramInstance> {
  return restoreInstance(bytes, {
    cache: new ModuleCache(null),
    engine: nodeEngine(),
    registry: new Registry(),
    context: { instance: crypto.randomUUID(), scope: [] },
    debug,
    function: fn,
  });
}

async function suspendedHash(): Promise<{ program: ProgramInstance; snapshot: Uint8Array }> {
  const l = await launch('examples/hash.wasm', { function: 'hash_debug' });
  l.program.instance.suspendAfterFuel(20_000_000);
  assert.equal((await l.done).state, 'SUSPENDED');
  return { program: l.program, snapshot: await snapshotInstance(l.program) };
}

describe('snapshot files', () => {
  it('a corrupt file is refused and never runs', async () => {
    const { snapshot } = await suspendedHash();
    const bad = snapshot.slice();
    bad[bad.length - 40] ^= 0x01; // a byte of memory data
    await assert.rejects(restore(bad), { code: 'ERR_SNAPSHOT_CORRUPT', message: /digest does not match/ });
  });

  it('a truncated file is refused', async () => {
    const { snapshot } = await suspendedHash();
    for (const length of [0, 8, 20, snapshot.length >> 1, snapshot.length - 1]) {
      await assert.rejects(restore(snapshot.subarray(0, length)), (e: Error & { code?: string }) => {
        assert.match(e.code ?? '', /^ERR_SNAPSHOT_/, `${length}: ${e.message}`);
        return true;
      });
    }
  });

  it('a file from other instrumentation is refused, naming both', async () => {
    const { program } = await suspendedHash();
    const mine = await instrumentationOf(program.compiled.prepared, program.compiled.program);
    const other = await writeSnapshot(program.compiled.program, program.instance.capture(), {
      version: 'gate-ts-prepare-0/binaryen-1',
      codeHash: mine.codeHash,
    });
    await assert.rejects(restore(other), {
      code: 'ERR_SNAPSHOT_INCOMPATIBLE',
      message: `snapshot was made by instrumentation gate-ts-prepare-0/binaryen-1; this runtime uses ${mine.version}`,
    });
    const changed = await writeSnapshot(program.compiled.program, program.instance.capture(), {
      version: mine.version,
      codeHash: new Uint8Array(32),
    });
    await assert.rejects(restore(changed), { code: 'ERR_SNAPSHOT_INCOMPATIBLE', message: /does not match/ });
  });

  it('a stack saved by an earlier version of our own rewrite resumes (portable stacks do not depend on it)', async () => {
    const { program } = await suspendedHash();
    const mine = await instrumentationOf(program.compiled.prepared, program.compiled.program);
    const older = await writeSnapshot(program.compiled.program, program.instance.capture(), {
      version: 'gate-ts-prepare-4/portable-stack-1',
      codeHash: mine.codeHash,
    });
    const chunks: Uint8Array[] = [];
    const restored = await restore(older, (c) => chunks.push(c));
    assert.deepEqual(await restored.run(), { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.equal(Buffer.concat(chunks).toString(), 'c16b02b158899315b165a22ba9385cee557172daf8789475abb4cd682c46ca56\n');
  });

  it('a gate.stack section after the data section is refused, as Gate refuses it', async () => {
    const { snapshot } = await suspendedHash();
    const name = new TextEncoder().encode('gate.stack');
    const extra = Uint8Array.from([0, name.length + 1 + 8, name.length, ...name, 0, 0, 0, 0, 0, 0, 0, 0]);
    const withStack = new Uint8Array([...snapshot, ...extra]);
    await assert.rejects(restore(withStack), { code: 'ERR_SNAPSHOT_INVALID', message: /gate\.stack section/ });
  });

  it('the same state gives the same bytes', async () => {
    const { program, snapshot } = await suspendedHash();
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
    assert.ok(same(await snapshotInstance(program), snapshot), 'snapshot of the same instance');
    const again = await snapshotInstance(await restore(snapshot));
    assert.ok(same(again, snapshot), 'snapshot of the restored instance');
  });

  it('zero pages cost nothing', async () => {
    const l = await launch('wat/grow.wasm', { function: 'grow' });
    assert.equal((await l.done).state, 'HALTED');
    const memory = l.program.instance.capture().memory;
    assert.equal(memory.byteLength, 512 * 65536);
    const snapshot = await snapshotInstance(l.program);
    assert.ok(snapshot.length < 2000, `${snapshot.length} bytes for 32 MiB of mostly zero memory`);
  });

  it('restoring one snapshot twice gives two independent instances', async () => {
    const l = await launch('examples/counter.wasm', { function: 'debug_count', timeResolution: 1000 });
    await until(() => l.log().split('\n').length > 3);
    l.program.suspend();
    await l.done;
    const snapshot = await snapshotInstance(l.program);
    const logs = [[], []] as Uint8Array[][];
    const a = await restore(snapshot, (c) => logs[0].push(c));
    const b = await restore(snapshot, (c) => logs[1].push(c));
    const runs = [a.run(), b.run()];
    await until(() => logs.every((log) => Buffer.concat(log).toString().split('\n').length > 3));
    a.kill();
    await runs[0];
    const before = Buffer.concat(logs[1]).length;
    await until(() => Buffer.concat(logs[1]).length > before, 5000, 'b to go on after a was killed');
    b.kill();
    await runs[1];
    const first = Number(Buffer.concat(logs[0]).toString().split('\n')[0]);
    const next = l.log().trim().split('\n').map(Number).at(-1)! + 1;
    assert.equal(first, next, 'the clone continues where the original stopped');
    assert.equal(Number(Buffer.concat(logs[1]).toString().split('\n')[0]), next);
  });

  it('a halted snapshot runs on a plain engine as a pre-initialized module', async () => {
    const h = await launch('examples/hash.wasm', { function: 'hash_debug' });
    assert.equal((await h.done).state, 'HALTED');
    const memory = h.program.instance.capture().memory;
    const snapshot = await snapshotInstance(h.program);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(snapshot as Uint8Array<ArrayBuffer>), {
      env: { __wasi_fd_write: () => 0, __wasi_proc_exit: () => 0, __gate_io_65536: () => undefined },
    });
    const exported = new Uint8Array((plain.exports.memory as WebAssembly.Memory).buffer);
    assert.equal(exported.byteLength, memory.byteLength);
    assert.ok(exported.every((b, i) => b === memory[i]), 'memory equals the instance memory');
    assert.equal(typeof plain.exports.hash_debug, 'function', 'a halted snapshot keeps its exports');
  });

  it('a halted snapshot resumes with a function; a suspended one refuses one', async () => {
    const h = await launch('examples/exit1.wasm', { function: 'exit0' });
    assert.equal((await h.done).state, 'TERMINATED');
    const final = await restore(await snapshotInstance(h.program));
    assert.deepEqual(final.status, { state: 'TERMINATED', cause: 'NORMAL', result: 0 });
    await assert.rejects(final.run(), { code: 'ERR_INSTANCE_FINAL' });

    const r = await launch('examples/recurse.wasm', { function: 'recurse_shallow' });
    assert.equal((await r.done).state, 'HALTED');
    const chunks: Uint8Array[] = [];
    const halted = await restore(await snapshotInstance(r.program), (c) => chunks.push(c));
    assert.equal(halted.status.state, 'HALTED');
    assert.equal((await halted.run({ function: 'recurse_shallow' })).state, 'HALTED');
    assert.equal(Buffer.concat(chunks).toString(), 'recurse: 4128127861\n');

    const { snapshot } = await suspendedHash();
    await assert.rejects(restore(snapshot, undefined, 'hash_small'), {
      message: 'entry function may not be specified for suspended program',
    });
  });
});
