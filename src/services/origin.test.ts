import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import { Registry } from './registry.ts';
import { ORIGIN_NAME, OriginConnector } from './origin.ts';
import { FakeInput, FakeOutput, Harness, TEST_CODE, settle, testContext, type Seen } from './servicetest.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const accepted = (id: number): Seen => ({ call: new Uint8Array([id & 0xff, id >> 8, 0, 0, 0, 0, 0, 0]), index: 0 });
const flow = (id: number, value: number): Seen => ({ flow: [{ id, value }] });
const data = (id: number, bytes: string | Uint8Array = new Uint8Array(0)): Seen => ({
  data: { id, note: 0, bytes: typeof bytes === 'string' ? enc(bytes) : bytes },
});

function setup(saved: Uint8Array | null = null) {
  const connector = new OriginConnector();
  const registry = new Registry().child().register(connector);
  const h = new Harness(registry.lookup(ORIGIN_NAME, testContext)!, saved);
  return { connector, h };
}

test('the hello example: accept, connect, flow 0 → EOF, output, end of run', async () => {
  const { connector, h } = setup();
  h.handle(new Uint8Array([8, 0, 0, 0, TEST_CODE, 0, 0, 0])); // accept
  assert.deepEqual(h.sent, []);
  assert.equal(connector.pendingAccepts, 1);

  const out = new FakeOutput();
  let joinedId = -1;
  const done = connector.connect(new FakeInput().stream, out.stream, undefined, (id) => (joinedId = id));
  assert.equal(joinedId, 0);
  assert.deepEqual(h.sent.splice(0).map((p) => [...p]), [
    [0x10, 0, 0, 0, TEST_CODE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0x10, 0, 0, 0, TEST_CODE, 0, 2, 0, 0, 0, 0, 0, 0xff, 0x7f, 0, 0],
  ]);
  assert.equal(connector.pendingAccepts, 0);

  h.flow([0, 0]); // wants no input
  assert.deepEqual(h.take(), [data(0)]);
  h.data(0, 'hello, world\n');
  await settle();
  assert.deepEqual(h.take(), [flow(0, 13)]);

  // The program returns without closing its stream: the run ends.
  const saved = h.shutdown();
  assert.equal(await done, true);
  assert.equal(out.text, 'hello, world\n');
  assert.equal(out.closed, true);
  // pending 0; 1 stream: id 0; read finished (0 0 0); write 7, 32767 outstanding, no bytes
  assert.deepEqual([...saved], [0, 1, 0, 0, 0, 0, 7, 0xff, 0xff, 0x01, 0]);
  assert.deepEqual(h.aborts, []);
});

test('connect before accept waits; the accept is answered at once', async () => {
  const { connector, h } = setup();
  const out = new FakeOutput();
  const done = connector.connect(null, out.stream);
  await settle();
  assert.equal(connector.waitingClients, 1);
  assert.deepEqual(h.take(), []);
  h.call();
  assert.deepEqual(h.take(), [accepted(0), data(0), flow(0, 32767)]); // no input: EOF at once
  assert.equal(connector.waitingClients, 0);
  h.flow([0, 0]);
  h.data(0, 'bye');
  h.data(0);
  await settle();
  assert.equal(await done, true);
  assert.equal(out.text, 'bye');
  assert.equal(connector.activeStreams, 0);
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
});

test('several concurrent connections get the lowest free ids', async () => {
  const { connector, h } = setup();
  h.call();
  h.call();
  const outs = [new FakeOutput(), new FakeOutput(), new FakeOutput()];
  const dones = outs.map((o) => connector.connect(null, o.stream));
  assert.deepEqual(h.take(), [accepted(0), data(0), flow(0, 32767), accepted(1), data(1), flow(1, 32767)]);
  assert.equal(connector.waitingClients, 1);
  assert.equal(connector.activeStreams, 2);

  h.data(1, 'to one');
  h.data(0, 'to zero');
  h.flow([0, 0], [1, 0]);
  h.data(0);
  await settle();
  assert.equal(await dones[0], true);
  assert.equal(connector.activeStreams, 1);

  h.call(); // id 0 is free again
  assert.deepEqual(h.take().filter((p) => 'call' in p), [accepted(0)]);
  h.data(0, 'to zero again');
  h.data(1);
  h.data(0);
  h.flow([0, 0]);
  await settle();
  assert.deepEqual(await Promise.all(dones), [true, true, true]);
  assert.deepEqual(outs.map((o) => o.text), ['to zero', 'to one', 'to zero again']);
  assert.deepEqual(h.aborts, []);
});

test('input flows to the program as it grants credit', async () => {
  const { connector, h } = setup();
  const input = new FakeInput();
  h.call();
  const done = connector.connect(input.stream, new FakeOutput().stream);
  h.take();
  input.push('x'.repeat(70000));
  h.flow([0, 5]);
  await settle();
  assert.deepEqual(h.take(), [data(0, 'xxxxx')]);
  h.flow([0, 69000], [0, -3]); // negative values are ignored
  await settle();
  assert.deepEqual(h.take(), [data(0, 'x'.repeat(65520)), data(0, 'x'.repeat(3480))]);
  input.end();
  h.flow([0, 1000]);
  await settle();
  assert.deepEqual(h.take(), [data(0, 'x'.repeat(995)), data(0)]);
  h.flow([0, 0]);
  h.data(0);
  await settle();
  assert.equal(await done, true);
});

test('program protocol errors are ABI violations', () => {
  const { connector, h } = setup();
  assert.throws(() => h.flow([0, 1]), (e: unknown) => e instanceof AbiViolation && e.message === 'origin stream not found: 0');
  assert.throws(() => h.data(2, 'x'), { message: 'origin stream not found: 2' });
  h.call();
  void connector.connect(null, null);
  h.take();
  assert.throws(() => h.data(0, new Uint8Array(32768)), (e: unknown) => e instanceof AbiViolation && e.message === 'write stream buffer overflow');
  h.flow([0, 0]);
  assert.throws(() => h.flow([0, 0]), (e: unknown) => e instanceof AbiViolation && e.message === 'read stream already closed');
  h.data(0);
  assert.throws(() => h.data(0), { message: 'origin stream not found: 0' }); // finished: output was null
});

test('info packets and negative flow values are ignored', () => {
  const { connector, h } = setup();
  h.info(enc('anything'));
  h.call(enc('content is ignored'));
  void connector.connect(null, null);
  h.take();
  h.flow([0, -1], [0, -0x80000000]);
  h.info();
  assert.deepEqual(h.take(), []);
});

test('a connect the program never accepts resolves false', async () => {
  const { connector, h } = setup();
  const input = new FakeInput();
  const out = new FakeOutput();
  const waiting = connector.connect(input.stream, out.stream);
  const ac = new AbortController();
  const aborted = connector.connect(null, null, ac.signal);
  ac.abort();
  assert.equal(await aborted, false);
  assert.equal(connector.waitingClients, 1);
  h.shutdown();
  assert.equal(await waiting, false);
  assert.equal(input.stream.locked, false); // untouched
  assert.equal(out.stream.locked, false);
  assert.equal(await connector.connect(null, null), false); // the run is over
  const locked = new FakeOutput();
  locked.stream.getWriter();
  await assert.rejects(connector.connect(null, locked.stream), TypeError);
});

test('close() before the program ever used origin', async () => {
  const connector = new OriginConnector();
  const waiting = connector.connect(null, null);
  connector.close();
  assert.equal(await waiting, false);
  assert.equal(connector.closed, true);
});

test('a client that disconnects: the program gets EOF and flow 0', async () => {
  const { connector, h } = setup();
  h.call();
  const input = new FakeInput();
  const out = new FakeOutput();
  const done = connector.connect(input.stream, out.stream);
  h.take();
  h.flow([0, 100]);
  input.fail();
  out.fail();
  await settle();
  assert.deepEqual(h.take(), [data(0), flow(0, 0)]);
  h.flow([0, 0]);
  h.data(0);
  assert.equal(await done, true);
  assert.equal(connector.activeStreams, 0);
});

test('aborting the signal cuts a joined connection; connect resolves true', async () => {
  const { connector, h } = setup();
  h.call();
  const ac = new AbortController();
  const input = new FakeInput();
  const out = new FakeOutput();
  const done = connector.connect(input.stream, out.stream, ac.signal);
  h.take();
  ac.abort();
  assert.equal(await done, true);
  await settle();
  assert.deepEqual(h.take(), [data(0), flow(0, 0)]);
  assert.equal(input.cancelled, true);
  assert.equal(out.aborted, true);
  assert.equal(connector.activeStreams, 1); // until the program closes its side
  h.flow([0, 0]);
  h.data(0);
  assert.equal(connector.activeStreams, 0);
});

test('suspend with an active connection, restore, drain concurrently', async () => {
  const { connector, h } = setup();
  h.call();
  const out = new FakeOutput();
  const done = connector.connect(new FakeInput().stream, out.stream);
  h.call();
  h.call(); // two accepts stay pending
  h.take();
  h.flow([0, 100]);
  h.data(0, 'partial');
  const saved = h.shutdown();
  assert.equal(await done, true);
  await settle();
  assert.equal(out.text, 'partial'); // flushed at the end of the run
  // pending 2; 1 stream: id 0; read 7/100/-; write 7/32760/- (7 bytes flushed)
  assert.deepEqual([...saved], [2, 1, 0, 7, 100, 0, 7, 0xf8, 0xff, 0x01, 0]);

  const next = setup(saved);
  // Restored stream 0 drains at once: EOF, then flow 0.
  assert.deepEqual(next.h.take(), [data(0), flow(0, 0)]);
  assert.equal(next.connector.pendingAccepts, 2);
  assert.equal(next.connector.activeStreams, 1);
  // The pending accepts still wait: a new client joins on the lowest free id.
  const out2 = new FakeOutput();
  const done2 = next.connector.connect(null, out2.stream);
  assert.deepEqual(next.h.take(), [accepted(1), data(1), flow(1, 32767)]);
  // The program may still use the restored stream's old credit, then close it.
  next.h.data(0, 'x'.repeat(32760));
  next.h.flow([0, 0]);
  next.h.data(0);
  assert.equal(next.connector.activeStreams, 1);
  next.h.flow([1, 0]);
  next.h.data(1);
  assert.equal(await done2, true);
  assert.deepEqual(next.h.shutdown(), new Uint8Array([1]));
  assert.deepEqual(next.h.aborts, []);
});

test('restored streams drain concurrently, in id order, each as far as needed', () => {
  const saved = new Uint8Array([
    0, // no pending accepts
    2, // streams
    3, ...[7, 5, 3, ...enc('abc')], ...[5, 0, 0], // id 3: bytes + EOF + flow 0 due
    7, ...[1, 0, 0], ...[7, 10, 0], // id 7: only the flow 0 is due
  ]);
  const { connector, h } = setup(saved);
  assert.deepEqual(h.take(), [data(3, 'abc'), data(3), flow(3, 0), flow(7, 0)]);
  assert.equal(connector.activeStreams, 2);
  h.data(7);
  h.flow([7, 0]);
  h.flow([3, 0]);
  h.data(3);
  assert.equal(connector.activeStreams, 0);
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
});

test('a restored state saved again records what the drain sent', () => {
  const saved = new Uint8Array([4, 2, 0, 7, 9, 0, 7, 0x80, 0x01, 0, 5, 1, 0, 0, 5, 3, 0]);
  const { h } = setup(saved);
  assert.deepEqual(h.take(), [data(0), flow(0, 0), flow(5, 0)]);
  // Stream 0: EOF sent (read 7 → 1), flow 0 sent (write 7 → 4); stream 5: flow 0 sent (5 → 4).
  const again = h.shutdown();
  assert.deepEqual([...again], [4, 2, 0, 1, 9, 0, 4, 0x80, 0x01, 0, 5, 1, 0, 0, 4, 3, 0]);
  // Nothing is left to drain, so one more round trip keeps the bytes.
  const third = setup(again);
  assert.deepEqual(third.h.take(), []);
  assert.deepEqual(third.h.shutdown(), again);
});

test('malformed origin state is refused', () => {
  const bad: [number[], string][] = [
    [[0, 2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], 'origin service resumed stream with duplicate id'],
    [[1, 1, 0, 7, 0, 0], 'end of data while decoding varint'],
    [[0, 1, 0, 7, 0, 0, 7, 0, 0, 9], 'end of data while decoding varint'], // 9 read-aheads promised
    [[0, 1, 0, 7, 5, 0, 7, 0, 0, 1, 0, 1, 0x41, 9], 'trailing data in origin service state'],
    [[0x80], 'end of data while decoding varint'],
    [[0, 1, 0, 3, 0, 0, 7, 0, 0], 'impossible state'],
  ];
  for (const [bytes, message] of bad) {
    assert.throws(() => setup(new Uint8Array(bytes)), (e: unknown) => e instanceof AbiViolation && e.message === message, message);
  }
});

test('the connector reports changes and serves one run only', () => {
  const { connector, h } = setup();
  let changes = 0;
  const off = connector.onChange(() => changes++);
  h.call();
  assert.ok(changes > 0);
  off();
  const before = changes;
  h.call();
  assert.equal(changes, before);
  assert.equal(connector.pendingAccepts, 2);
  assert.throws(() => connector.create(testContext, { code: 0, maxSendSize: 65536 }, null), /more than one/);
  assert.throws(() => new OriginConnector({ bufsize: 1000 }), RangeError);
  assert.deepEqual([...h.shutdown()], [2]);
});

test('reattach: a new client takes over a restored connection, read-ahead input included', async () => {
  const connector = new OriginConnector({ reattach: true });
  const h = new Harness(new Registry().child().register(connector).lookup(ORIGIN_NAME, testContext)!);
  h.call();
  const input = new FakeInput();
  const out = new FakeOutput();
  const done = connector.connect(input.stream, out.stream);
  h.take();
  h.flow([0, 5]);
  input.push('hello world'); // more than the program's credit
  await settle();
  assert.deepEqual(h.take(), [data(0, 'hello')]);
  h.data(0, 'HELLO');
  const saved = h.shutdown();
  assert.equal(await done, true);
  await settle();
  assert.equal(out.text, 'HELLO');

  const next = new OriginConnector({ reattach: true });
  const h2 = new Harness(new Registry().child().register(next).lookup(ORIGIN_NAME, testContext)!, saved);
  // Nothing is drained: the stream waits for its new client.
  assert.deepEqual(h2.take(), []);
  assert.equal(next.detachedStreams, 1);
  const input2 = new FakeInput();
  const out2 = new FakeOutput();
  let joined = -1;
  const done2 = next.connect(input2.stream, out2.stream, undefined, (id) => (joined = id));
  assert.equal(joined, 0);
  assert.equal(next.detachedStreams, 0);
  h2.flow([0, 100]);
  await settle();
  // The old client took 'HELLO', so the program's send credit is topped up.
  assert.deepEqual(h2.take(), [flow(0, 5), data(0, ' world')]);
  input2.push('!');
  await settle();
  assert.deepEqual(h2.take(), [data(0, '!')]);
  h2.data(0, ' WORLD!');
  input2.end();
  await settle();
  assert.deepEqual(h2.take(), [flow(0, 7), data(0)]);
  h2.flow([0, 0]);
  h2.data(0);
  assert.equal(await done2, true);
  assert.equal(out2.text, ' WORLD!');
  assert.deepEqual(h2.aborts, []);
});

test('a saved read-ahead is refused when oversized or for an unknown stream', () => {
  const make = (bytes: number[]) => () =>
    new Harness(new Registry().child().register(new OriginConnector()).lookup(ORIGIN_NAME, testContext)!, new Uint8Array(bytes));
  // pending 0; 1 stream id 0 (read 7/5/-, write 7/0/-); read-ahead for stream 3
  assert.throws(make([0, 1, 0, 7, 5, 0, 7, 0, 0, 1, 3, 1, 0x41]), /unknown stream/);
  assert.throws(make([0, 1, 0, 7, 5, 0, 7, 0, 0, 1, 0, 0]), /size limit/);
});
