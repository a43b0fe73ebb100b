// Edge cases and hostile programs: each gets a clear error or the documented
// outcome, and never takes the host (or other instances) down with it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guest, launch, runProgram, until } from '../helpers.ts';
import { prepareModule } from '../../src/runtime/prepare/prepare.ts';

describe('module loading', () => {
  it('refuses an import outside the ABI, naming it', async () => {
    await assert.rejects(prepareModule(guest('wat/bad_import.wasm')), {
      code: 'ERR_ABI_IMPORT',
      message: 'import function not supported: "env" "foo"',
    });
  });

  it('refuses a known import with the wrong signature', async () => {
    await assert.rejects(prepareModule(guest('wat/bad_signature.wasm')), {
      message:
        'function wasi_snapshot_preview1.fd_write (i32, i32, i32, i32) i32 imported with wrong signature (i32, i32) i32',
    });
  });

  it('refuses an initial memory above the instance limit', async () => {
    await assert.rejects(prepareModule(guest('wat/huge_memory.wasm')), {
      code: 'ERR_MEMORY_LIMIT',
      message: /initial program memory size exceeds instance memory size limit/,
    });
  });

  it('refuses bytes that are not a module', async () => {
    await assert.rejects(prepareModule(new TextEncoder().encode('#!/bin/sh\necho hi\n')), {
      code: 'ERR_MODULE_INVALID',
    });
    await assert.rejects(prepareModule(guest('examples/hello.wasm').slice(0, 100)), {
      code: 'ERR_MODULE_INVALID',
    });
  });

  it('runs the empty module to HALTED', async () => {
    const r = await runProgram('wat/nop.wasm', { connect: false });
    assert.deepEqual(r.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
  });

  it('runs the start section before the entry function', async () => {
    assert.equal((await runProgram('wat/start.wasm', { function: 'after', connect: false })).log, 'start\nafter\n');
    const r = await runProgram('wat/start.wasm', { connect: false });
    assert.equal(r.log, 'start\n');
    assert.equal(r.status.state, 'HALTED');
  });

  it("ignores an entry function's return value", async () => {
    const r = await runProgram('wat/entry_i32.wasm', { function: 'main', connect: false });
    assert.deepEqual(r.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
  });

  it('accepts wasi_unstable imports', async () => {
    assert.equal((await runProgram('wat/wasi_unstable.wasm', { function: 'main', connect: false })).log, 'unstable\n');
  });

  it('traps an import access in a module without memory', async () => {
    const r = await runProgram('wat/nomem.wasm', { function: 'main', connect: false });
    assert.deepEqual(r.status, { state: 'KILLED', cause: 'MEMORY_ACCESS_OUT_OF_BOUNDS', result: 0 });
  });
});

describe('hostile programs', () => {
  it('a memory bomb stops at the memory limit', async () => {
    assert.equal((await runProgram('wat/grow.wasm', { function: 'grow', connect: false })).log, 'grow: 512\n');
    const small = await runProgram('wat/grow.wasm', { function: 'grow', connect: false, maxMemoryPages: 40 });
    assert.equal(small.log, 'grow: 40\n');
  });

  it('a malformed packet kills with ABI_VIOLATION', async () => {
    const r = await runProgram('wat/bad_packet.wasm', { function: 'main', connect: false });
    assert.deepEqual(r.status, {
      state: 'KILLED',
      cause: 'ABI_VIOLATION',
      result: 0,
      error: 'runtime: invalid op packet size: 4',
    });
  });

  it('a packet to an undiscovered service kills with ABI_VIOLATION', async () => {
    const r = await runProgram('wat/bad_code.wasm', { function: 'main', connect: false });
    assert.equal(r.status.cause, 'ABI_VIOLATION');
    assert.equal(r.status.error, 'invalid service code in packet: 5');
  });

  it('a packet flood is held back and can still be killed', async () => {
    const l = await launch('wat/flood.wasm', { function: 'flood' });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(l.program.status.state, 'RUNNING');
    // Backpressure: the host holds at most about one queue's worth for the program.
    assert.ok(l.program.instance.bytesForProgram <= 65536 + 65536, `queued ${l.program.instance.bytesForProgram}`);
    l.program.kill();
    assert.equal((await l.done).state, 'KILLED');
  });

  it('ABI deficiencies suspend the program', async () => {
    const r = await runProgram('wat/deficiency.wasm', { function: 'toomuch', connect: false });
    assert.deepEqual(r.status, { state: 'SUSPENDED', cause: 'ABI_DEFICIENCY', result: 0 });
    assert.equal(r.log, 'ping\n');
    const raise = await runProgram('wat/deficiency.wasm', { function: 'raise', connect: false });
    assert.equal(raise.status.cause, 'ABI_DEFICIENCY');
    assert.equal(raise.log, '');
  });
});

describe('preemption', () => {
  it('an endless loop shares the thread with other instances', async () => {
    const spinner = await launch('wat/loop.wasm', { function: 'spin' });
    const r = await runProgram('examples/hello.wasm', { function: 'twice' });
    assert.equal(r.output, 'hello, world\nhello, world\n');
    const hash = await runProgram('examples/hash.wasm', { function: 'hash_small' });
    assert.equal(hash.status.state, 'HALTED');
    assert.equal(spinner.program.status.state, 'RUNNING');
    spinner.program.kill();
    assert.deepEqual(await spinner.done, { state: 'KILLED', cause: 'NORMAL', result: 0 });
  });

  for (const [file, fn] of [['wat/bulk.wasm', 'fill'], ['wat/bulk.wasm', 'copy'], ['wat/table_copy.wasm', 'spin']]) {
    it(`a loop of large bulk operations (${file} ${fn}) is preempted, suspended, time-limited and killed`, async () => {
      const spinner = await launch(file, { function: fn });
      // Other instances get slices while it runs.
      const r = await runProgram('examples/hello.wasm', { function: 'twice' });
      assert.equal(r.output, 'hello, world\nhello, world\n');
      spinner.program.suspend();
      assert.deepEqual(await spinner.done, { state: 'SUSPENDED', cause: 'NORMAL', result: 0 });
      const again = spinner.program.run();
      await until(() => spinner.program.instance.fuelConsumed > 2_000_000, 10000, 'progress after resume');
      spinner.program.kill();
      assert.deepEqual(await again, { state: 'KILLED', cause: 'NORMAL', result: 0 });
      const limited = await runProgram(file, { function: fn, connect: false, timeLimit: 200 });
      assert.equal(limited.status.limit, 'time');
      assert.equal(limited.status.error, 'time limit exceeded: 200 ms');
    });
  }

  it('a loop that holds a reference is preempted, suspended and killed like any other', async () => {
    const spinner = await launch('wat/refloop.wasm', { function: 'spin' });
    const r = await runProgram('examples/hello.wasm', { function: 'twice' });
    assert.equal(r.output, 'hello, world\nhello, world\n');
    spinner.program.suspend();
    assert.deepEqual(await spinner.done, { state: 'SUSPENDED', cause: 'NORMAL', result: 0 });
    const again = spinner.program.run();
    spinner.program.kill();
    assert.deepEqual(await again, { state: 'KILLED', cause: 'NORMAL', result: 0 });
  });

  it('suspends an endless loop and resumes it', async () => {
    const l = await launch('wat/loop.wasm', { function: 'spin' });
    await until(() => l.program.instance.fuelConsumed > 1_000_000, 10000, 'some progress');
    l.program.suspend();
    assert.deepEqual(await l.done, { state: 'SUSPENDED', cause: 'NORMAL', result: 0 });
    const used = l.program.instance.fuelConsumed;
    const again = l.program.run();
    await until(() => l.program.instance.fuelConsumed > used + 1_000_000, 10000, 'progress after resume');
    l.program.kill();
    assert.equal((await again).state, 'KILLED');
  });

  it('a fuel limit kills a runaway program with a clear error', async () => {
    const r = await runProgram('wat/loop.wasm', { function: 'spin', connect: false, fuelLimit: 50_000_000 });
    assert.equal(r.status.state, 'KILLED');
    assert.equal(r.status.limit, 'fuel');
    assert.equal(r.status.error, 'fuel limit exceeded: 50000000');
  });

  it('a time limit kills a runaway program with a clear error', async () => {
    const r = await runProgram('wat/loop.wasm', { function: 'spin', connect: false, timeLimit: 200 });
    assert.equal(r.status.state, 'KILLED');
    assert.equal(r.status.limit, 'time');
    assert.equal(r.status.error, 'time limit exceeded: 200 ms');
  });

  it('an idle program waiting for input costs no slices', async () => {
    const l = await launch('examples/wait.wasm', { function: 'wait' });
    await new Promise((r) => setTimeout(r, 100));
    const before = l.program.instance.fuelConsumed;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(l.program.instance.fuelConsumed, before);
    l.program.suspend();
    assert.equal((await l.done).state, 'SUSPENDED');
  });
});
