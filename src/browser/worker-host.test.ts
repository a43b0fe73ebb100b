// The browser host driven through its page client over a MessageChannel, in
// Node (the real browser runs the same code in test/browser/): programs run,
// connections carry input and output with flow control, a snapshot moves a
// counting program between the browser host and a Node host without a lost
// or repeated number.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { nodeEngine } from '../host/engine.ts';
import { ModuleCache } from '../host/module-cache.ts';
import { restoreInstance, snapshotInstance } from '../host/snapshot.ts';
import { Registry } from '../services/index.ts';
import { guest } from '../../test/helpers.ts';
import { BrowserRuntime, type Connection } from './client.ts';
import type { Port } from './protocol.ts';
import { WorkerHost } from './worker-host.ts';

const channel = new MessageChannel();
const engine = nodeEngine();
new WorkerHost(channel.port1 as unknown as Port, { engine });
const runtime = new BrowserRuntime(channel.port2 as unknown as Port);
after(() => {
  channel.port1.close();
  channel.port2.close();
});

const text = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString();

/** Read a connection's output until `done(text so far)` holds or the connection ends. */
async function read(c: Connection, done: (text: string) => boolean = () => false): Promise<string> {
  const chunks: Uint8Array[] = [];
  const reader = c.readable.getReader();
  try {
    for (;;) {
      if (done(text(chunks))) return text(chunks);
      const { value, done: end } = await reader.read();
      if (end) return text(chunks);
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Lines "0\n1\n...": the numbers, checked to be consecutive. */
function counted(output: string): number[] {
  const numbers = output.split('\n').filter((l) => l !== '').map(Number);
  numbers.forEach((n, i) => assert.equal(n, numbers[0] + i, `number ${i} of ${output.slice(0, 200)}`));
  return numbers;
}

describe('browser host', () => {
  it('runs hello and reports its end', async () => {
    const info = await runtime.launch('5b9e1c2a-0000-4000-8000-000000000001', guest('examples/hello.wasm'), { function: 'greet' });
    assert.match(info.module, /^[0-9a-f]{64}$/);
    const c = runtime.connect(info.id);
    assert.equal(await read(c), 'hello, world\n');
    assert.equal((await c.closed).joined, true);
    const status = await runtime.suspend(info.id);
    assert.equal(status.state, 'HALTED');
    await runtime.delete(info.id);
    await assert.rejects(runtime.suspend(info.id), /instance not found/);
  });

  it('echoes typed input and ends at end of input', async () => {
    const id = '5b9e1c2a-0000-4000-8000-000000000002';
    await runtime.launch(id, guest('examples/echo.wasm'), { function: 'echo' });
    const c = runtime.connect(id);
    const w = c.writable.getWriter();
    await w.write(new TextEncoder().encode('hello\n'));
    assert.equal(await read(c, (t) => t === 'hello\n'), 'hello\n');
    await w.write(new TextEncoder().encode('again\n'));
    await w.close();
    assert.equal(await read(c), 'again\n');
    assert.equal((await c.closed).joined, true);
  });

  it('refuses what is not a program, naming the problem', async () => {
    await assert.rejects(runtime.launch('5b9e1c2a-0000-4000-8000-000000000003', new Uint8Array([1, 2, 3])), /not a WebAssembly module/);
    await assert.rejects(
      runtime.launch('5b9e1c2a-0000-4000-8000-000000000003', guest('examples/hello.wasm'), { function: 'nope' }),
      /function not exported/,
    );
  });

  it('keeps a connection across a snapshot of a running instance', async () => {
    const id = '5b9e1c2a-0000-4000-8000-000000000004';
    await runtime.launch(id, guest('examples/counter.wasm'), { function: 'count_fast' });
    const c = runtime.connect(id);
    const reader = c.readable.getReader();
    let out = '';
    while (out.split('\n').length < 100) out += Buffer.from((await reader.read()).value!).toString();
    const snapshot = await runtime.snapshot(id);
    assert.ok(snapshot.byteLength > 0);
    while (out.split('\n').length < 3000) out += Buffer.from((await reader.read()).value!).toString();
    counted(out);
    assert.equal((await runtime.kill(id)).state, 'KILLED');
    reader.releaseLock();
    await c.closed;
  });

  it('moves a counting conversation to a Node host and back without a lost or repeated number', async () => {
    const id = '5b9e1c2a-0000-4000-8000-000000000005';
    await runtime.launch(id, guest('examples/counter.wasm'), { function: 'count_fast' });
    let c = runtime.connect(id);
    let out = '';
    const reader1 = c.readable.getReader();
    while (out.split('\n').length < 50) out += Buffer.from((await reader1.read()).value!).toString();
    reader1.releaseLock();
    assert.equal((await runtime.suspend(id)).state, 'SUSPENDED');
    out += await read(c); // what the suspension flushed
    await c.closed;
    const fromBrowser = await runtime.snapshot(id);
    await runtime.delete(id);

    // On Node, a new client takes the connection over.
    const cache = new ModuleCache(null);
    const node = await restoreInstance(fromBrowser, { engine, cache, registry: new Registry(), context: { instance: id, scope: [] } });
    const done = node.run();
    const chunks: Uint8Array[] = [];
    const joined = node.connect(null, new WritableStream({ write: (chunk) => void chunks.push(chunk.slice()) }));
    while (text(chunks).split('\n').length < 50) await new Promise((r) => setTimeout(r, 1));
    node.suspend();
    assert.equal((await done).state, 'SUSPENDED');
    await joined;
    out += text(chunks);
    const fromNode = await snapshotInstance(node);

    // Back in the browser host.
    await runtime.launch(id, fromNode);
    c = runtime.connect(id);
    out += await read(c, (t) => (out + t).split('\n').length > 200);
    await runtime.kill(id);
    const numbers = counted(out);
    assert.equal(numbers[0], 0);
    assert.ok(numbers.length > 150);
  });
});
