// `gate migrate ID A B` moves a running counter between two gate-server
// processes: the output read from A and then from B is one unbroken count,
// with nothing lost and nothing repeated.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { collect, example, gate, makeHome, spawnGate, startServer, waitForOutput, type ServerProcess, type TestHome } from './helpers.ts';

function numbers(text: string): number[] {
  return text.split('\n').filter(Boolean).map(Number);
}

describe('gate migrate', () => {
  let home: TestHome;
  let a: ServerProcess;
  let b: ServerProcess;
  before(async () => {
    home = makeHome();
    [a, b] = await Promise.all([startServer(home, 'a'), startServer(home, 'b')]);
  });
  after(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await home.cleanup();
  });

  it('moves a running counter from one server process to another without losing or repeating output', async () => {
    const launched = await gate(home, [a.url, 'launch', example('counter.wasm'), 'count', 'moving']);
    assert.equal(launched.code, 0, launched.stderr);
    const id = launched.stdout.trim();

    const ioA = spawnGate(home, [a.url, 'io', id]);
    const fromA = collect(ioA.stdout);
    const exitA = once(ioA, 'exit');
    await waitForOutput(ioA.stdout, /^0\n1\n2\n3\n/, fromA);

    const moved = await gate(home, ['migrate', id, a.url, b.url]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, `${id}\n`);
    // The connection to A ends when the instance is suspended there.
    await exitA;

    const listA = await gate(home, [a.url, 'instances']);
    assert.ok(!listA.stdout.includes(id), listA.stdout);
    const status = await gate(home, [b.url, 'status', id]);
    assert.equal(status.stdout, 'RUNNING [moving]\n');

    const before = numbers(fromA.text);
    const ioB = spawnGate(home, [b.url, 'io', id]);
    const fromB = collect(ioB.stdout);
    await waitForOutput(ioB.stdout, /^\d+\n\d+\n\d+\n/, fromB);
    ioB.kill();

    const all = [...before, ...numbers(fromB.text)];
    assert.deepEqual(all, all.map((_, i) => i));
    assert.equal((await gate(home, [b.url, 'kill', id])).stdout, 'KILLED\n');
  });
});
