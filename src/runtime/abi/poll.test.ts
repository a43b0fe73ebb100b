import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cause } from '../instance/status.ts';
import { Trap } from '../instance/errors.ts';
import { FakeHost } from './fake-host.ts';
import { poll_oneoff } from './poll.ts';

const FAULT = 21;
const INVAL = 28;
const BADF = 8;
const PERM = 63;
const CLOCK = 0;
const FD_READ = 1;
const FD_WRITE = 2;
const ABSTIME = 1;

const SUBS = 1000;
const EVENTS = 5000;
const NEVENTS = 900;

const isOOB = (e: unknown): boolean => e instanceof Trap && e.trapCause === Cause.MEMORY_ACCESS_OUT_OF_BOUNDS;

type Sub =
  | { userdata: bigint; clock: number; timeout: bigint; precision?: bigint; flags?: number }
  | { userdata: bigint; tag: number; fd: number };

function writeSubs(h: FakeHost, subs: Sub[], at = SUBS): void {
  subs.forEach((s, i) => {
    const a = at + 48 * i;
    h.memory.fill(0, a, a + 48);
    h.setU64(a, s.userdata);
    if ('clock' in s) {
      h.setU8(a + 8, CLOCK);
      h.setU32(a + 16, s.clock);
      h.setU64(a + 24, s.timeout);
      h.setU64(a + 32, s.precision ?? 1n);
      h.setU16(a + 40, s.flags ?? 0);
    } else {
      h.setU8(a + 8, s.tag);
      h.setU32(a + 16, s.fd);
    }
  });
}

interface Ev {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
  flags: number;
}

function event(h: FakeHost, i: number): Ev {
  const a = EVENTS + 32 * i;
  return { userdata: h.u64(a), error: h.u16(a + 8), type: h.u8(a + 10), nbytes: h.u64(a + 16), flags: h.u16(a + 24) };
}

function setup(): FakeHost {
  const h = new FakeHost();
  h.realtimeNs = 1_700_000_000_000_000_000n; // a multiple of R, for readable numbers
  h.monotonicNs = 2_000_000_000n;
  h.memory.fill(0xee, EVENTS, EVENTS + 32 * 8);
  h.setU32(NEVENTS, 99);
  return h;
}

function poll(h: FakeHost, n: number): number {
  return poll_oneoff(h, SUBS, EVENTS, n, NEVENTS);
}

describe('poll_oneoff: the abi test scenarios', () => {
  test('1: four clocks → events for subscriptions 0 and 2, no wait', () => {
    const h = setup();
    writeSubs(h, [
      { userdata: 0n, clock: 0, timeout: 1n, flags: ABSTIME },
      { userdata: 1n, clock: 0, timeout: 1n << 30n },
      { userdata: 2n, clock: 1, timeout: 0n },
      { userdata: 3n, clock: 1, timeout: 1n << 63n, flags: ABSTIME },
    ]);
    assert.equal(poll(h, 4), 0);
    assert.equal(h.u32(NEVENTS), 2);
    assert.deepEqual(event(h, 0), { userdata: 0n, error: 0, type: CLOCK, nbytes: 0n, flags: 0 });
    assert.deepEqual(event(h, 1), { userdata: 2n, error: 0, type: CLOCK, nbytes: 0n, flags: 0 });
    assert.equal(h.waits.length, 1);
    assert.equal(h.waits[0].timeout, 0n);
    // Pre-fill: the uncounted last subscription is visible in slot 2.
    assert.deepEqual(event(h, 2), { userdata: 3n, error: 0, type: CLOCK, nbytes: 0n, flags: 0 });
    assert.equal(h.u64(EVENTS + 96), 0xeeeeeeeeeeeeeeeen);
  });

  test('2: clock id 4 → one INVAL event', () => {
    const h = setup();
    writeSubs(h, [{ userdata: 7n, clock: 4, timeout: 0n }]);
    assert.equal(poll(h, 1), 0);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 7n, error: INVAL, type: CLOCK, nbytes: 0n, flags: 0 });
    assert.equal(h.waits[0].timeout, 0n);
  });

  test('3: write readiness of fds 0, 1, 4, 2, 3, 5', () => {
    const h = setup();
    writeSubs(
      h,
      [0, 1, 4, 2, 3, 5].map((fd, i) => ({ userdata: BigInt(i), tag: FD_WRITE, fd })),
    );
    assert.equal(poll(h, 6), 0);
    assert.equal(h.u32(NEVENTS), 6);
    const w = (userdata: bigint, error: number, nbytes: bigint): Ev => ({ userdata, error, type: FD_WRITE, nbytes, flags: 0 });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => event(h, i)),
      [w(0n, PERM, 0n), w(1n, 0, 0x7fffffffn), w(2n, 0, 65536n), w(3n, 0, 0x7fffffffn), w(4n, BADF, 0n), w(5n, BADF, 0n)],
    );
    assert.deepEqual(h.waits, [{ readable: false, writable: true, timeout: 0n, memo: [0n, 0n] }]);
  });

  test('4: read readiness of fds 0, 1, 2, 4 with nothing pending → 3 events', () => {
    const h = setup();
    writeSubs(
      h,
      [0, 1, 2, 4].map((fd, i) => ({ userdata: BigInt(i), tag: FD_READ, fd })),
    );
    assert.equal(poll(h, 4), 0);
    assert.equal(h.u32(NEVENTS), 3);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(event(h, i), { userdata: BigInt(i), error: PERM, type: FD_READ, nbytes: 0n, flags: 0 });
    }
    assert.equal(h.waits[0].timeout, 0n); // the error subscriptions make it a zero wait
    assert.deepEqual(event(h, 3), { userdata: 3n, error: 0, type: FD_READ, nbytes: 0n, flags: 0 }); // pre-fill
  });

  test('5: read readiness of fd 4 with a reply pending', () => {
    const h = setup();
    h.input = Array(16).fill(0);
    writeSubs(h, [{ userdata: 0n, tag: FD_READ, fd: 4 }]);
    assert.equal(poll(h, 1), 0);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 0n, error: 0, type: FD_READ, nbytes: 65536n, flags: 0 });
    assert.deepEqual(h.waits, [{ readable: true, writable: false, timeout: null, memo: [0n, 0n] }]);
  });

  test('6: unknown event type → one INVAL event', () => {
    const h = setup();
    writeSubs(h, [{ userdata: 5n, tag: 100, fd: 4 }]);
    assert.equal(poll(h, 1), 0);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 5n, error: INVAL, type: 100, nbytes: 0n, flags: 0 });
  });
});

describe('poll_oneoff: waiting and clocks', () => {
  test('fd 4 readable after a wait, re-entered', () => {
    const h = setup();
    writeSubs(h, [
      { userdata: 1n, tag: FD_WRITE, fd: 4 },
      { userdata: 2n, tag: FD_READ, fd: 4 },
    ]);
    h.outputSpace = 0;
    assert.equal(poll(h, 2), 0);
    assert.notEqual(h.pending, null);
    assert.equal(h.u32(NEVENTS), 99); // nothing written while unwinding
    assert.equal(h.u64(EVENTS), 0xeeeeeeeeeeeeeeeen);
    h.input = [1];
    assert.equal(poll(h, 2), 0);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 2n, error: 0, type: FD_READ, nbytes: 65536n, flags: 0 });
  });

  test('relative timer fires after the wait (corrected rule), using the start time kept in the memo', () => {
    const h = setup();
    h.monotonicNs = 2_000_000_100n;
    writeSubs(h, [{ userdata: 42n, clock: 1, timeout: 1_500_000_000n }]);
    assert.equal(poll(h, 1), 0);
    assert.equal(h.waits.length, 1);
    const start = 2_000_000_000n; // 2_000_000_100 rounded down to a multiple of R = 1024 within the second
    assert.deepEqual(h.waits[0], { readable: false, writable: false, timeout: 1_499_999_744n, memo: [0n, start] });
    // The wait elapsed (a little more than the timeout: the end time is rounded down too).
    // Re-reading the start now would push the deadline past the end; the memo keeps it.
    h.monotonicNs += 1_500_002_000n;
    assert.equal(poll(h, 1), 0);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 42n, error: 0, type: CLOCK, nbytes: 0n, flags: 0 });
  });

  test('relative timer not yet expired (interrupted wait): not counted, but pre-filled', () => {
    const h = setup();
    writeSubs(h, [{ userdata: 42n, clock: 0, timeout: 3_000_000_000n }]);
    poll(h, 1);
    h.realtimeNs += 1_000_000_000n;
    h.interrupt = true;
    assert.equal(poll(h, 1), 0);
    assert.equal(h.u32(NEVENTS), 0);
    // wasi-libc's clock_nanosleep reads this error field regardless of nevents.
    assert.deepEqual(event(h, 0), { userdata: 42n, error: 0, type: CLOCK, nbytes: 0n, flags: 0 });
  });

  test('absolute timer: waits until the deadline minus the start, rounded; counted when reached', () => {
    const h = setup();
    const deadline = h.realtimeNs + 5_500_000_100n;
    writeSubs(h, [{ userdata: 9n, clock: 0, timeout: deadline, flags: ABSTIME }]);
    poll(h, 1);
    assert.equal(h.waits[0].timeout, 5_499_999_744n);
    h.realtimeNs = deadline + 2000n;
    poll(h, 1);
    assert.equal(h.u32(NEVENTS), 1);
    assert.equal(event(h, 0).userdata, 9n);
  });

  test('the shortest clock wins; sub-second parts below R wait only whole seconds', () => {
    const h = setup();
    writeSubs(h, [
      { userdata: 1n, clock: 0, timeout: 7_000_000_000n },
      { userdata: 2n, clock: 1, timeout: 2_000_000_500n },
    ]);
    poll(h, 2);
    assert.equal(h.waits[0].timeout, 2_000_000_000n);
    assert.deepEqual(h.waits[0].memo, [h.realtimeNs, h.monotonicNs]);
  });

  test('a relative timer whose deadline overflows 64 bits never fires', () => {
    const h = setup();
    writeSubs(h, [{ userdata: 1n, clock: 1, timeout: (1n << 64n) - 1n }]);
    poll(h, 1);
    h.monotonicNs = (1n << 64n) - 2n;
    poll(h, 1);
    assert.equal(h.u32(NEVENTS), 0);
  });

  test('other fds and error subscriptions make the wait zero even with timers', () => {
    const h = setup();
    writeSubs(h, [
      { userdata: 1n, clock: 0, timeout: 7_000_000_000n },
      { userdata: 2n, tag: FD_WRITE, fd: 1 },
    ]);
    poll(h, 2);
    assert.equal(h.waits[0].timeout, 0n);
    assert.equal(h.u32(NEVENTS), 1);
    assert.deepEqual(event(h, 0), { userdata: 2n, error: 0, type: FD_WRITE, nbytes: 0x7fffffffn, flags: 0 });
  });

  test('no subscriptions: waits with nothing watched and no timeout', () => {
    const h = setup();
    assert.equal(poll_oneoff(h, 0, 0, 0, NEVENTS), 0);
    assert.deepEqual(h.waits, [{ readable: false, writable: false, timeout: null, memo: [0n, 0n] }]);
    assert.notEqual(h.pending, null);
    h.interrupt = true;
    assert.equal(poll_oneoff(h, 0, 0, 0, NEVENTS), 0);
    assert.equal(h.u32(NEVENTS), 0);
  });

  test('CPU-time clocks are a deficiency whatever the timeout, before anything is written or waited for', () => {
    for (const [clock, timeout] of [
      [2, 1n],
      [3, 1n],
      [2, 0n],
      [3, 1n << 40n],
    ] as const) {
      const h = setup();
      writeSubs(h, [
        { userdata: 0n, tag: FD_READ, fd: 0 },
        { userdata: 1n, clock, timeout },
      ]);
      assert.equal(poll(h, 2), 0);
      assert.equal(h.deficiencies, 1);
      assert.equal(h.waits.length, 0);
      assert.equal(h.u32(NEVENTS), 99);
      assert.equal(h.u64(EVENTS), 0xeeeeeeeeeeeeeeeen);
    }
  });
});

describe('poll_oneoff: pointers', () => {
  test('FAULT rules', () => {
    const h = setup();
    writeSubs(h, [{ userdata: 0n, clock: 0, timeout: 0n }]);
    assert.equal(poll_oneoff(h, 0, EVENTS, 1, NEVENTS), FAULT);
    assert.equal(poll_oneoff(h, SUBS, 0, 1, NEVENTS), FAULT);
    assert.equal(poll_oneoff(h, SUBS, EVENTS, 1, 0), FAULT);
    assert.equal(poll_oneoff(h, 0, 0, 0, 0), FAULT);
    assert.equal(h.waits.length, 0);
    // Null arrays are fine with no subscriptions (negative counts too).
    writeSubs(h, []);
    h.interrupt = true;
    h.pending = { readable: false, writable: false, timeout: null };
    assert.equal(poll_oneoff(h, 0, 0, -1, NEVENTS), 0);
    assert.equal(h.u32(NEVENTS), 0);
  });

  test('subscriptions out of bounds trap before any wait', () => {
    const h = setup();
    assert.throws(() => poll_oneoff(h, 65536 - 40, EVENTS, 1, NEVENTS), isOOB);
    assert.throws(() => poll_oneoff(h, 0xfffffff0, EVENTS, 1, NEVENTS), isOOB);
    assert.equal(h.waits.length, 0);
  });

  test('events out of bounds trap while the records are written', () => {
    const h = setup();
    writeSubs(h, [
      { userdata: 1n, tag: FD_READ, fd: 0 },
      { userdata: 2n, tag: FD_READ, fd: 1 },
    ]);
    assert.throws(() => poll_oneoff(h, SUBS, 65536 - 48, 2, NEVENTS), isOOB);
    assert.equal(h.u64(65536 - 48), 1n); // the first event was complete
    assert.equal(h.u64(65536 - 16), 2n); // the second got its userdata and error
    assert.equal(h.u16(65536 - 8), 0);
    assert.equal(h.u32(NEVENTS), 99);
  });
});
