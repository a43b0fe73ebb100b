import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import {
  DEFAULT_BUFSIZE,
  INITIAL_FLAGS,
  Stream,
  decodeDirectionState,
  type StreamState,
} from './stream.ts';
import { FakeInput, FakeOutput, decodePacket, settle, type Seen } from './servicetest.ts';
import { ByteReader, ByteWriter } from './varint.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A stream with its sent packets collected. */
function setup(
  input: ReadableStream<Uint8Array> | null,
  output: WritableStream<Uint8Array> | null,
  state?: StreamState,
  options: { bufsize?: number; onNote?: (v: number) => void } = {},
) {
  const sent: Uint8Array[] = [];
  const aborts: Error[] = [];
  let finished = 0;
  const stream = new Stream(3, { code: 1, ...options, onFinished: () => finished++ }, state);
  stream.start(
    (p) => sent.push(p),
    (e) => aborts.push(e),
    input,
    output,
  );
  return {
    stream,
    aborts,
    finished: () => finished,
    take: (): Seen[] => sent.splice(0).map(decodePacket),
  };
}

const flow = (value: number, id = 3): Seen => ({ flow: [{ id, value }] });
const data = (bytes: Uint8Array | string, id = 3): Seen => ({
  data: { id, note: 0, bytes: typeof bytes === 'string' ? enc(bytes) : bytes },
});
const eof = (id = 3): Seen => data(new Uint8Array(0), id);

test('write direction: initial credit, delivery to the client, top-ups', async () => {
  const out = new FakeOutput();
  const s = setup(null, out.stream);
  assert.deepEqual(s.take(), [eof(), flow(DEFAULT_BUFSIZE - 1)]);
  s.stream.data(enc('hello, '));
  s.stream.data(enc('world\n'));
  await settle();
  assert.equal(out.text, 'hello, world\n');
  const flows = s.take();
  assert.equal(flows.reduce((n, p) => n + ('flow' in p ? p.flow[0].value : 0), 0), 13);
  assert.deepEqual(s.aborts, []);
});

test('write direction: more than the granted credit is an ABI violation', async () => {
  const out = new FakeOutput({ hold: true });
  const s = setup(null, out.stream, undefined, { bufsize: 16 });
  assert.deepEqual(s.take(), [eof(), flow(15)]);
  assert.throws(() => s.stream.data(new Uint8Array(16)), (e: unknown) => e instanceof AbiViolation && e.message === 'write stream buffer overflow');
  s.stream.data(new Uint8Array(10));
  await settle(); // 10 bytes handed to the (held) client writer: credit comes back
  assert.deepEqual(s.take(), [flow(10)]);
  s.stream.data(new Uint8Array(15)); // the ring is full now, the writer is busy
  await settle();
  assert.deepEqual(s.take(), []); // backpressure: no top-up while the client is slow
  assert.throws(() => s.stream.data(new Uint8Array(1)), { message: 'write stream buffer overflow' });
  out.releaseOne();
  await settle();
  assert.deepEqual(s.take(), [flow(15)]);
  out.release();
  await settle();
  assert.equal(out.bytes.length, 25);
});

test('write direction: data EOF closes the client writer after draining, then flow 0', async () => {
  const out = new FakeOutput({ hold: true });
  const s = setup(null, out.stream);
  s.take();
  s.stream.data(enc('abc'));
  await settle();
  s.stream.data(enc('def'));
  s.stream.data(new Uint8Array(0));
  assert.throws(() => s.stream.data(enc('x')), (e: unknown) => e instanceof AbiViolation && e.message === 'write stream already closed');
  assert.throws(() => s.stream.data(new Uint8Array(0)), { message: 'write stream already closed' });
  await settle();
  assert.equal(out.closed, false);
  assert.deepEqual(s.take(), [flow(3)]);
  out.release();
  await settle();
  assert.equal(out.text, 'abcdef');
  assert.equal(out.closed, true);
  assert.deepEqual(s.take(), [flow(3), flow(0)]);
  assert.equal(s.stream.write.finished, true);
  assert.equal(s.stream.finished, false); // the program has not sent its flow 0
  s.stream.flow(0);
  assert.equal(s.stream.finished, true);
  assert.equal(s.finished(), 1);
  await s.stream.closed;
});

test('write direction: a failing client writer gets flow 0; later data is buffered', async () => {
  const out = new FakeOutput();
  const s = setup(null, out.stream);
  s.take();
  out.fail();
  await settle();
  assert.deepEqual(s.take(), [flow(0)]);
  s.stream.data(enc('lost'));
  s.stream.data(new Uint8Array(0));
  s.stream.flow(0);
  assert.equal(s.stream.finished, true);
  assert.deepEqual(s.take(), []);
});

test('read direction: credit limits packets; big client chunks are split', async () => {
  const input = new FakeInput();
  const s = setup(input.stream, null);
  assert.deepEqual(s.take(), [flow(0)]);
  const big = new Uint8Array(100000).map((_, i) => i & 0xff);
  input.push(big);
  await settle();
  assert.deepEqual(s.take(), []); // no credit, nothing read
  s.stream.flow(10);
  await settle();
  assert.deepEqual(s.take(), [data(big.subarray(0, 10))]);
  s.stream.flow(70000);
  assert.deepEqual(s.take(), [data(big.subarray(10, 65530)), data(big.subarray(65530, 70010))]);
  input.end();
  await settle();
  assert.deepEqual(s.take(), []); // buffered bytes wait for credit, EOF comes after them
  s.stream.flow(40000);
  assert.deepEqual(s.take(), [data(big.subarray(70010))]);
  await settle(); // the end is noticed by the next read
  assert.deepEqual(s.take(), [eof()]);
  assert.equal(s.stream.read.credit, 40000 - 29990);
  s.stream.data(new Uint8Array(0));
  assert.equal(s.stream.finished, false);
  s.stream.flow(0);
  assert.equal(s.stream.finished, true);
  assert.deepEqual(s.aborts, []);
});

test('read direction: the client is read only while there is credit', async () => {
  let pulls = 0;
  const input = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        pulls++;
        c.enqueue(new Uint8Array(4).fill(pulls));
      },
    },
    { highWaterMark: 0 },
  );
  const s = setup(input, null);
  s.take();
  await settle();
  assert.equal(pulls, 0);
  s.stream.flow(6);
  await settle();
  assert.equal(pulls, 2);
  assert.deepEqual(s.take(), [data(new Uint8Array([1, 1, 1, 1])), data(new Uint8Array([2, 2]))]);
});

test('read direction: EOF from the client first, then the program closes', async () => {
  const input = new FakeInput();
  const s = setup(input.stream, null);
  s.take();
  s.stream.flow(100);
  input.push('hi');
  input.end();
  await settle();
  assert.deepEqual(s.take(), [data('hi'), eof()]);
  s.stream.flow(5); // still allowed: the program has not closed its side
  s.stream.flow(0);
  assert.throws(() => s.stream.flow(1), (e: unknown) => e instanceof AbiViolation && e.message === 'read stream already closed');
  assert.throws(() => s.stream.flow(0), { message: 'read stream already closed' });
  assert.equal(s.stream.read.finished, true);
});

test('read direction: flow 0 first is acknowledged by EOF and stops reading', async () => {
  const input = new FakeInput();
  const s = setup(input.stream, null);
  s.take();
  s.stream.flow(0);
  assert.deepEqual(s.take(), [eof()]);
  await settle();
  assert.equal(input.cancelled, true);
  assert.equal(s.stream.read.finished, true);
});

test('read direction: flow 0 with credit left reads until the credit is used', async () => {
  const input = new FakeInput();
  const s = setup(input.stream, null);
  s.take();
  s.stream.flow(10);
  s.stream.flow(0);
  await settle();
  assert.deepEqual(s.take(), []);
  input.push('0123456789abcdef');
  await settle();
  assert.deepEqual(s.take(), [data('0123456789'), eof()]);
  assert.equal(input.cancelled, true);
});

test('read direction: a failing client input ends like EOF', async () => {
  const input = new FakeInput();
  const s = setup(input.stream, null);
  s.take();
  s.stream.flow(10);
  input.fail();
  await settle();
  assert.deepEqual(s.take(), [eof()]);
  assert.deepEqual(s.aborts, []);
});

test('credit above 2^31−1 is an ABI violation; negative values are notes', () => {
  const notes: number[] = [];
  const s = setup(null, null, undefined, { onNote: (v) => notes.push(v) });
  s.stream.flow(0x40000000);
  s.stream.flow(0x3fffffff);
  assert.throws(() => s.stream.flow(1), (e: unknown) => e instanceof AbiViolation && e.message === 'stream flow credit overflow');
  s.stream.flow(-1);
  s.stream.flow(-0x80000000);
  assert.deepEqual(notes, [-1, -0x80000000]);
  assert.equal(s.stream.read.credit, 0x7fffffff);
});

test('disconnect cuts the client; the program still finishes its side', async () => {
  const input = new FakeInput();
  const out = new FakeOutput();
  const s = setup(input.stream, out.stream);
  s.take();
  s.stream.disconnect(new Error('gone'));
  await settle();
  assert.deepEqual(s.take(), [eof(), flow(0)]);
  assert.equal(input.cancelled, true);
  assert.equal(out.aborted, true);
  s.stream.data(enc('late')); // within the credit granted before: buffered, never written
  s.stream.data(new Uint8Array(0));
  s.stream.flow(0);
  assert.equal(s.stream.finished, true);
  assert.equal(out.bytes.length, 0);
});

test('stop flushes program output to the client and captures the state', async () => {
  const input = new FakeInput();
  const out = new FakeOutput({ hold: true });
  const s = setup(input.stream, out.stream);
  s.take();
  s.stream.flow(100);
  s.stream.data(enc('one'));
  await settle(); // 'one' is with the (held) writer
  s.stream.data(enc('two')); // still in the ring
  s.stream.stop();
  s.stream.data(enc('ignored')); // after stop nothing is sent any more
  assert.deepEqual(s.take(), [flow(3)]);
  const state = s.stream.state();
  assert.deepEqual(state.read, { flags: INITIAL_FLAGS, subscribed: 100, data: new Uint8Array(0) });
  assert.equal(state.write.flags, INITIAL_FLAGS);
  out.release();
  await settle();
  assert.equal(out.text, 'onetwo');
  assert.equal(out.closed, true);
  assert.equal(input.cancelled, true);
  await s.stream.closed;

  const w = new ByteWriter();
  s.stream.encode(w);
  // read: flags 7, 100 unused credit; write: flags 7, 32767 − 3 (flushed at stop) outstanding
  assert.deepEqual([...w.finish()], [7, 100, 0, 7, 0xfc, 0xff, 0x01, 0]);
});

test('a restored stream drains without a connection: bytes, EOF, flow 0', () => {
  const state: StreamState = {
    read: { flags: 7, subscribed: 5, data: enc('abc') },
    write: { flags: 7, subscribed: 100, data: new Uint8Array(0) },
  };
  const s = setup(null, null, state);
  assert.deepEqual(s.take(), [data('abc'), eof(), flow(0)]);
  s.stream.flow(1); // the program may still grant credit until it closes
  s.stream.data(enc('x'.repeat(100)));
  assert.throws(() => s.stream.data(enc('y')), { message: 'write stream buffer overflow' });
  s.stream.data(new Uint8Array(0));
  s.stream.flow(0);
  assert.equal(s.stream.finished, true);
  assert.equal(s.finished(), 1);
});

test('a restored stream sends only what was not sent before', () => {
  const state: StreamState = {
    read: { flags: 1, subscribed: 0, data: new Uint8Array(0) }, // EOF already sent
    write: { flags: 4, subscribed: 0, data: new Uint8Array(0) }, // flow 0 already sent
  };
  const s = setup(null, null, state);
  assert.deepEqual(s.take(), []);
  assert.deepEqual(s.stream.state(), state);
});

test('saved direction states are validated', () => {
  const decode = (bytes: number[], max = 16) => decodeDirectionState(new ByteReader(new Uint8Array(bytes)), max);
  assert.deepEqual(decode([7, 3, 2, 9, 9]), { flags: 7, subscribed: 3, data: new Uint8Array([9, 9]) });
  assert.deepEqual(decode([0, 0, 0]), { flags: 0, subscribed: 0, data: new Uint8Array(0) });
  const bad: [number[], string][] = [
    [[7, 0, 17, ...new Array(17).fill(0)], 'serialized buffer state size limit exceeded'],
    [[7, 0, 3, 1, 2], 'unexpected end of serialized state'],
    [[7, 0], 'end of data while decoding varint'],
    [[3, 0, 0], 'impossible state'], // connected after EOF
    [[1, 0, 1, 5], 'impossible state'], // bytes after EOF
    [[8, 0, 0], 'impossible state'],
  ];
  for (const [bytes, message] of bad) {
    assert.throws(() => decode(bytes), (e: unknown) => e instanceof AbiViolation && e.message === message, message);
  }
  // A write state cannot claim more outstanding bytes than its ring holds.
  assert.throws(
    () => new Stream(0, { code: 0, bufsize: 16 }, { read: { flags: 7, subscribed: 0, data: new Uint8Array(0) }, write: { flags: 7, subscribed: 16, data: new Uint8Array(0) } }),
    { message: 'impossible state' },
  );
  assert.throws(() => new Stream(0, { code: 0, bufsize: 1000 }), RangeError);
});
