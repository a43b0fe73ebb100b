import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cause } from '../instance/status.ts';
import { Trap } from '../instance/errors.ts';
import { FakeHost } from './fake-host.ts';
import * as gate from './gate.ts';

const isOOB = (e: unknown): boolean => e instanceof Trap && e.trapCause === Cause.MEMORY_ACCESS_OUT_OF_BOUNDS;

// Layout used below: receive iovecs at 100, send iovecs at 200, results at
// 300 (nrecv), 304 (nsent), 312 (flags); data at 1000+ (send) and 4000+ (receive).
const RECV = 100;
const SEND = 200;
const NRECV = 300;
const NSENT = 304;
const FLAGS = 312;

/** A 16-byte discovery packet naming "bogus" (the abi test's packet). */
const BOGUS = [16, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 5, ...new TextEncoder().encode('bogus')];

function setup(): FakeHost {
  const h = new FakeHost();
  h.put(1000, BOGUS);
  h.iovecs(SEND, [[1000, 16]]);
  h.iovecs(RECV, [[4000, 65536 - 4000]]);
  h.setU32(NRECV, 0xdead);
  h.setU32(NSENT, 0xdead);
  h.setU64(FLAGS, 0xdeadn);
  return h;
}

test('gate.fd_N returns 4', () => {
  assert.equal(gate.fd(new FakeHost({ memorySize: 0 })), 4);
});

describe('gate.io_N', () => {
  test('send and receive; flags 1 on the first call, 0 afterwards', () => {
    const h = setup();
    h.input = Array.from({ length: 16 }, (_, i) => i);
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, -1n, FLAGS);
    assert.equal(h.u32(NSENT), 16);
    assert.equal(h.u32(NRECV), 16);
    assert.equal(h.u64(FLAGS), 1n);
    assert.deepEqual(h.output, BOGUS);
    assert.deepEqual([...h.memory.subarray(4000, 4016)], h.output.map((_, i) => i));
    h.input = [1];
    gate.io(h, RECV, 1, NRECV, SEND, 0, NSENT, -1n, FLAGS);
    assert.equal(h.u64(FLAGS), 0n);
    assert.equal(h.u32(NSENT), 0);
    assert.equal(h.u32(NRECV), 1);
  });

  test('a zero flags pointer leaves the flag set', () => {
    const h = setup();
    h.input = [1];
    gate.io(h, RECV, 1, NRECV, 0, 0, NSENT, -1n, 0);
    assert.equal(h.resumed, true);
    gate.io(h, RECV, 1, NRECV, 0, 0, NSENT, 0n, FLAGS);
    assert.equal(h.u64(FLAGS), 1n);
    assert.equal(h.resumed, false);
  });

  test('zero result pointers are not written; nothing is checked there', () => {
    const h = setup();
    h.input = [9, 9];
    gate.io(h, RECV, 1, 0, SEND, 1, 0, 0n, 0);
    assert.equal(h.output.length, 16);
    assert.equal(h.u8(4001), 9);
    assert.equal(h.u32(0), 0);
  });

  test('result pointers out of bounds trap, in the order nsent, nrecv, flags', () => {
    const h = setup();
    h.input = [9];
    assert.throws(() => gate.io(h, RECV, 1, 65534, SEND, 1, NSENT, 0n, FLAGS), isOOB);
    assert.equal(h.u32(NSENT), 16); // written before the nrecv store trapped
    assert.equal(h.resumed, true); // flags never reached
  });

  test('timeout under 1000 ns with something to transfer: no wait at all', () => {
    for (const timeout of [0n, 1n, 999n]) {
      const h = setup();
      h.outputSpace = 4;
      gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, timeout, FLAGS);
      assert.equal(h.waits.length, 0);
      assert.equal(h.u32(NSENT), 4);
      assert.equal(h.u32(NRECV), 0);
    }
    // Receive buffers alone also count.
    const h = setup();
    gate.io(h, RECV, 1, NRECV, SEND, 0, NSENT, 0n, FLAGS);
    assert.equal(h.waits.length, 0);
  });

  test('timeout 0 with nothing to transfer is a zero wait (a yield)', () => {
    const h = setup();
    h.iovecs(SEND, [[1000, 0]]);
    h.iovecs(RECV, [[4000, 0]]);
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, 0n, FLAGS);
    assert.deepEqual(h.waits, [{ readable: true, writable: false, timeout: 0n }]);
    assert.equal(h.u32(NSENT), 0);
    assert.equal(h.u32(NRECV), 0);
    assert.equal(h.u64(FLAGS), 1n);
  });

  test('wait request: input always watched, output only when sending, timeout rounded', () => {
    const h = setup();
    h.outputSpace = 0; // nothing ready: unwinds
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, 1000n, FLAGS);
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, -1n, FLAGS);
    gate.io(h, RECV, 1, NRECV, SEND, 0, NSENT, 2_500_000_000n, FLAGS);
    assert.deepEqual(
      h.waits.map((w) => [w.readable, w.writable, w.timeout]),
      [
        [true, true, 0n], // 1000 ns rounds down to nothing with R = 1024
        [true, true, null],
        [true, false, 2_499_999_744n],
      ],
    );
  });

  test('unwinding: nothing observable, then the re-entered call completes', () => {
    const h = setup();
    h.outputSpace = 0;
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, -1n, FLAGS);
    assert.notEqual(h.pending, null);
    assert.equal(h.u32(NSENT), 0xdead);
    assert.equal(h.u32(NRECV), 0xdead);
    assert.equal(h.u64(FLAGS), 0xdeadn);
    assert.equal(h.resumed, true);
    // During the wait the host takes output space.
    h.outputSpace = 100;
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, -1n, FLAGS);
    assert.equal(h.pending, null);
    assert.equal(h.u32(NSENT), 16);
    assert.equal(h.u32(NRECV), 0);
    assert.equal(h.u64(FLAGS), 1n);
  });

  test('an interrupted wait transfers nothing', () => {
    const h = setup();
    h.outputSpace = 0;
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, 5_000_000_000n, FLAGS);
    h.outputSpace = 100;
    h.input = [1, 2, 3];
    h.interrupt = true;
    gate.io(h, RECV, 1, NRECV, SEND, 1, NSENT, 5_000_000_000n, FLAGS);
    assert.equal(h.u32(NSENT), 0);
    assert.equal(h.u32(NRECV), 0);
    assert.deepEqual(h.output, []);
  });

  test('a pure send returns with nothing sent when only input is ready', () => {
    const h = setup();
    h.outputSpace = 0;
    h.input = [1];
    gate.io(h, RECV, 0, NRECV, SEND, 1, NSENT, -1n, FLAGS);
    assert.equal(h.u32(NSENT), 0);
    assert.equal(h.u32(NRECV), 0);
    assert.deepEqual(h.input, [1]); // no receive buffers
  });

  test('writes before reads; each direction stops at its first short transfer', () => {
    const h = setup();
    h.put(1100, [7, 7, 7]);
    h.iovecs(SEND, [
      [1000, 16],
      [1100, 3],
      [1000, 16],
    ]);
    h.outputSpace = 17;
    h.iovecs(RECV, [
      [4000, 2],
      [4100, 0],
      [4200, 4],
      [4300, 4],
    ]);
    h.input = [1, 2, 3, 4, 5];
    gate.io(h, RECV, 4, NRECV, SEND, 3, NSENT, -1n, FLAGS);
    assert.equal(h.u32(NSENT), 17);
    assert.deepEqual(h.output, [...BOGUS, 7]);
    assert.equal(h.u32(NRECV), 5);
    assert.deepEqual([...h.memory.subarray(4200, 4204)], [3, 4, 5, 0]);
    assert.equal(h.u8(4300), 0);
  });

  test('an out-of-bounds send range traps before its bytes move', () => {
    const h = setup();
    h.iovecs(SEND, [
      [1000, 16],
      [65530, 16],
    ]);
    assert.throws(() => gate.io(h, RECV, 1, NRECV, SEND, 2, NSENT, 0n, FLAGS), isOOB);
    assert.equal(h.output.length, 16);
  });

  test('the sending scan reads send iovecs only up to the first non-empty one', () => {
    const h = new FakeHost({ memorySize: 256 });
    const send = 248; // iovec 0 is the last 8 bytes of memory
    h.iovecs(send, [[100, 1]]);
    // Iovec 1 would be beyond memory; the scan stops before it, but the
    // transfer loop then reaches it only after a full first write.
    h.outputSpace = 0;
    h.input = [1];
    gate.io(h, 0, 0, 0, send, 2, 0, -1n, 0);
    assert.deepEqual(h.traps, []);
    h.outputSpace = 10;
    assert.throws(() => gate.io(h, 0, 0, 0, send, 2, 0, -1n, 0), isOOB);
    assert.deepEqual(h.output, [0]);
  });

  test('negative counts are empty vectors; a null iovec array is an ordinary address', () => {
    const h = setup();
    h.iovecs(0, [[1000, 16]]);
    gate.io(h, 0, -1, NRECV, 0, 1, NSENT, 0n, FLAGS);
    assert.equal(h.u32(NSENT), 16);
  });
});
