// Every example program through the runtime: outputs, results and causes, as
// guest/README.md documents them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { client, launch, runProgram, until } from '../helpers.ts';
import { echoService, Registry } from '../../src/services/index.ts';

const HELLO = 'hello, world\n';

describe('hello', () => {
  it('greet sends hello to the client and halts', async () => {
    const r = await runProgram('examples/hello.wasm', { function: 'greet' });
    assert.deepEqual(r.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.equal(r.output, HELLO);
    assert.equal(r.log, '');
  });

  it('twice sends it twice', async () => {
    const r = await runProgram('examples/hello.wasm', { function: 'twice' });
    assert.equal(r.status.state, 'HALTED');
    assert.equal(r.output, HELLO + HELLO);
  });

  it('fail terminates with result 1 and logs why', async () => {
    const r = await runProgram('examples/hello.wasm', { function: 'fail' });
    assert.deepEqual(r.status, { state: 'TERMINATED', cause: 'NORMAL', result: 1 });
    assert.equal(r.log, 'exiting with return value 1\n');
  });

  it('multi greets every client until killed', async () => {
    const l = await launch('examples/hello.wasm', { function: 'multi' });
    for (let i = 0; i < 3; i++) {
      const c = client();
      assert.equal(await l.program.connect(c.readable, c.writable), true);
      assert.equal(c.text(), HELLO);
    }
    assert.equal(l.program.status.state, 'RUNNING');
    l.program.kill();
    assert.deepEqual(await l.done, { state: 'KILLED', cause: 'NORMAL', result: 0 });
    assert.match(l.log(), /^(multi: accepting stream\nmulti: greeting connection\n){3}multi: accepting stream\n$/);
  });

  it('test_ext calls the test service when it is available', async () => {
    const registry = new Registry().register(echoService);
    const r = await runProgram('examples/hello.wasm', { function: 'test_ext', registry, connect: false });
    assert.equal(r.status.state, 'HALTED');
    const without = await runProgram('examples/hello.wasm', { function: 'test_ext', connect: false });
    assert.deepEqual(without.status, { state: 'TERMINATED', cause: 'NORMAL', result: 1 });
    assert.equal(without.log, 'test service is unavailable\n');
  });

  it('refuses an unknown entry function', async () => {
    await assert.rejects(launch('examples/hello.wasm', { function: 'nosuch' }), {
      message: 'function not exported or it cannot be used as entry function',
    });
  });
});

describe('streams', () => {
  it('echo copies input larger than the flow window back to the client', async () => {
    const input = new Uint8Array(300_000).map((_, i) => (i * 7 + 3) & 0xff);
    const l = await launch('examples/echo.wasm', { function: 'echo' });
    const c = client(input);
    await l.program.connect(c.readable, c.writable);
    assert.equal((await l.done).state, 'HALTED');
    assert.deepEqual(new Uint8Array(c.bytes()), input);
  });

  it('wait blocks on input and upper-cases it line by line', async () => {
    const r = await runProgram('examples/wait.wasm', { function: 'wait', input: 'one\ntwo\nthree' });
    assert.equal(r.status.state, 'HALTED');
    assert.equal(r.output, 'ONE\nTWO\nTHREE');
  });

  it('repl answers every line', async () => {
    const r = await runProgram('examples/hello.wasm', { function: 'repl', input: 'x\n' });
    assert.equal(r.status.state, 'HALTED');
    assert.equal(r.output, HELLO);
    assert.equal(r.log, 'repl: connection accepted\nrepl: command\n');
  });

  it('counter ticks to a client until killed', async () => {
    const l = await launch('examples/counter.wasm', { function: 'count_fast' });
    const c = client();
    const joined = l.program.connect(c.readable, c.writable);
    await until(() => c.text().split('\n').length > 1000, 20000, 'a thousand ticks');
    l.program.kill();
    assert.equal((await l.done).state, 'KILLED');
    await joined;
    const lines = c.text().split('\n');
    lines.pop(); // possibly partial
    lines.forEach((line, i) => assert.equal(line, String(i)));
  });
});

describe('exit', () => {
  for (const [fn, result] of [
    ['exit1', 1],
    ['exit0', 0],
    ['exit_other', 1],
  ] as const) {
    it(`${fn} terminates with result ${result}`, async () => {
      const r = await runProgram('examples/exit1.wasm', { function: fn, connect: false });
      assert.deepEqual(r.status, { state: 'TERMINATED', cause: 'NORMAL', result });
    });
  }
});

describe('traps', () => {
  const cases = {
    unreachable: ['KILLED', 'UNREACHABLE'],
    divide_by_zero: ['KILLED', 'INTEGER_DIVIDE_BY_ZERO'],
    remainder_by_zero: ['KILLED', 'INTEGER_DIVIDE_BY_ZERO'],
    integer_overflow: ['KILLED', 'INTEGER_OVERFLOW'],
    float_conversion: ['KILLED', 'INTEGER_OVERFLOW'],
    out_of_bounds: ['KILLED', 'MEMORY_ACCESS_OUT_OF_BOUNDS'],
    stack_exhaustion: ['SUSPENDED', 'CALL_STACK_EXHAUSTED'],
    indirect_index: ['KILLED', 'INDIRECT_CALL_INDEX_OUT_OF_BOUNDS'],
    indirect_signature: ['KILLED', 'INDIRECT_CALL_SIGNATURE_MISMATCH'],
    indirect_null: ['KILLED', 'INDIRECT_CALL_SIGNATURE_MISMATCH'],
  } as const;
  for (const [fn, [state, cause]] of Object.entries(cases)) {
    it(`${fn} ends ${state} ${cause}`, async () => {
      const r = await runProgram('examples/traps.wasm', { function: fn, connect: false });
      assert.deepEqual(r.status, { state, cause, result: 0 });
      assert.equal(r.log, `trap: ${fn}\n`);
    });
  }

  it('a stack-exhausted instance stays exhausted when resumed', async () => {
    const l = await launch('examples/traps.wasm', { function: 'stack_exhaustion' });
    assert.equal((await l.done).cause, 'CALL_STACK_EXHAUSTED');
    assert.equal((await l.program.run()).cause, 'CALL_STACK_EXHAUSTED');
  });
});

describe('computation', () => {
  it('hash_small gives the known SHA-256 digest to the client and the log', async () => {
    const digest = 'f4efd7391752c7980f578777866f9c1cb66fca1515d062bac87f78534e9610fd\n';
    const r = await runProgram('examples/hash.wasm', { function: 'hash_small' });
    assert.equal(r.status.state, 'HALTED');
    assert.equal(r.output, digest);
    assert.equal(r.log, digest);
  });

  it('the loop programs of the bench compute their documented results', async () => {
    const cases = [
      ['examples/sha256chain.wasm', 'chain_small', 'sha256chain: 36c1cb4f826ae42ceba848227e0c5f786178ca9dceca6772e5d728d09c30a2f6\n'],
      ['examples/sort.wasm', 'sort_small', 'sort: 1179885773\n'],
      ['examples/matmul.wasm', 'matmul_small', 'matmul: 160882751\n'],
    ];
    for (const [file, fn, line] of cases) {
      const r = await runProgram(file, { function: fn, connect: false });
      assert.deepEqual(r.status, { state: 'HALTED', cause: 'NORMAL', result: 0 }, fn);
      assert.equal(r.log, line);
    }
  });

  it('recurse_shallow and recurse compute through deep recursion', async () => {
    const shallow = await runProgram('examples/recurse.wasm', { function: 'recurse_shallow', connect: false });
    assert.equal(shallow.log, 'recurse: 4128127861\n');
    const deep = await runProgram('examples/recurse.wasm', { function: 'recurse', connect: false });
    assert.deepEqual(deep.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.equal(deep.log, 'recurse: 1588990601\n');
  });

  it('integrity check passes while being preempted', async () => {
    const r = await runProgram('examples/integrity.wasm', { function: 'check', connect: false });
    assert.equal(r.log, 'integrity: 500000 rounds ok\n');
    assert.equal(r.status.state, 'HALTED');
  });

  it('printf through WASI stdio goes to the debug log', async () => {
    const r = await runProgram('examples/printf.wasm', { connect: false });
    assert.deepEqual(r.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
    assert.equal(r.log, 'hello from printf 42\nhello from stderr\n');
  });
});
