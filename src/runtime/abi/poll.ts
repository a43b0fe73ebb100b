// poll_oneoff (abi.md §2.8): Gate's counting and pre-fill rules, with the
// relative-timer defect corrected.

import type { AbiHost } from './host.ts';
import { Errno, EventType, GATE_FD, MAX_PACKET_SIZE, SUBCLOCK_ABSTIME } from './errno.ts';
import { loadU16, loadU32, loadU64, loadU8, ptrAdd, storeU16, storeU32, storeU64, storeU8, u32 } from './memory.ts';
import { roundTime } from './time.ts';

const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;
const U64_MAX = (1n << 64n) - 1n;
/** What a write-ready debug descriptor reports as writable bytes. */
const DEBUG_WRITABLE = 0x7fffffffn;

// Subscription field offsets.
const SUB_USERDATA = 0;
const SUB_TAG = 8;
const SUB_CLOCK_ID = 16;
const SUB_CLOCK_TIMEOUT = 24;
const SUB_CLOCK_PRECISION = 32;
const SUB_CLOCK_FLAGS = 40;
const SUB_FD = 16;

// Event field offsets.
const EV_USERDATA = 0;
const EV_ERROR = 8;
const EV_TYPE = 10;
const EV_NBYTES = 16;
const EV_FLAGS = 24;

export function poll_oneoff(host: AbiHost, subs: number, events: number, nsubs: number, nevents: number): number {
  subs = u32(subs);
  events = u32(events);
  nevents = u32(nevents);
  if (nsubs > 0 && subs === 0) return Errno.FAULT;
  if (nsubs > 0 && events === 0) return Errno.FAULT;
  if (nevents === 0) return Errno.FAULT;

  const res = host.timeResolution;
  const sub = (i: number): number => ptrAdd(subs, SUBSCRIPTION_SIZE * i);

  // Which clocks need a start reading: those with a non-zero timeout on a
  // valid id (0 = realtime, 1–3 = monotonic). Gate also derives a precision
  // here to choose between coarse and fine host clocks; we have one of each.
  let useRealtime = false;
  let useMonotonic = false;
  for (let i = 0; i < nsubs; i++) {
    const s = sub(i);
    if (loadU8(host, s + SUB_TAG) !== EventType.CLOCK) continue;
    const id = loadU32(host, s + SUB_CLOCK_ID);
    if (id >= 4) continue;
    if (loadU64(host, s + SUB_CLOCK_TIMEOUT) === 0n) continue;
    loadU64(host, s + SUB_CLOCK_PRECISION); // read (and bounds-checked) like Gate
    if (id === 0) useRealtime = true;
    else useMonotonic = true;
  }

  let realtimeStart = useRealtime ? roundTime(host.realtime(), res) : 0n;
  let monotonicStart = useMonotonic ? roundTime(host.monotonic(), res) : 0n;

  // The wait: the earliest clock deadline; fd 4 readiness; anything else
  // (an error event to report) makes it zero.
  let watchRead = false;
  let watchWrite = false;
  let timeout: bigint | null = null;
  for (let i = 0; i < nsubs; i++) {
    const s = sub(i);
    const tag = loadU8(host, s + SUB_TAG);
    if (tag === EventType.CLOCK) {
      const id = loadU32(host, s + SUB_CLOCK_ID);
      if (id < 4) {
        if (id >= 2) {
          host.deficiency(); // CPU-time clocks
          return 0;
        }
        let t = loadU64(host, s + SUB_CLOCK_TIMEOUT);
        if (loadU16(host, s + SUB_CLOCK_FLAGS) & SUBCLOCK_ABSTIME) {
          const now = id === 0 ? realtimeStart : monotonicStart;
          t = t < now ? 0n : t - now;
        }
        if (timeout === null || t < timeout) timeout = t;
        continue;
      }
    } else if (tag === EventType.FD_READ) {
      if (loadU32(host, s + SUB_FD) === GATE_FD) {
        watchRead = true;
        continue;
      }
    } else if (tag === EventType.FD_WRITE) {
      if (loadU32(host, s + SUB_FD) === GATE_FD) {
        watchWrite = true;
        continue;
      }
    }
    timeout = 0n;
  }

  // With nsubs = 0 this waits with nothing watched until the run is
  // interrupted, as Gate does.
  const outcome = host.wait({
    readable: watchRead,
    writable: watchWrite,
    timeout: timeout === null ? null : roundTime(timeout, res),
    memo: [realtimeStart, monotonicStart],
  });
  if (outcome === null) return 0;
  // Re-entered after a real wait: the start times are the ones from before it.
  if (outcome.memo.length >= 2) [realtimeStart, monotonicStart] = outcome.memo;

  const realtimeEnd = useRealtime ? roundTime(host.realtime(), res) : 0n;
  const monotonicEnd = useMonotonic ? roundTime(host.monotonic(), res) : 0n;

  let n = 0;
  for (let i = 0; i < nsubs; i++) {
    const s = sub(i);
    const ev = ptrAdd(events, EVENT_SIZE * n);

    // Pre-fill slot n; if this subscription is not counted, the next one
    // overwrites it (or it stays visible beyond nevents).
    storeU64(host, ev + EV_USERDATA, loadU64(host, s + SUB_USERDATA));
    storeU16(host, ev + EV_ERROR, Errno.SUCCESS);
    const tag = loadU8(host, s + SUB_TAG);
    storeU8(host, ev + EV_TYPE, tag);
    storeU64(host, ev + EV_NBYTES, 0n);
    storeU16(host, ev + EV_FLAGS, 0);

    let error: number = Errno.SUCCESS;
    if (tag === EventType.CLOCK) {
      const id = loadU32(host, s + SUB_CLOCK_ID);
      if (id < 4) {
        const t = loadU64(host, s + SUB_CLOCK_TIMEOUT);
        if (t === 0n) {
          n++;
          continue;
        }
        const start = id === 0 ? realtimeStart : monotonicStart;
        const end = id === 0 ? realtimeEnd : monotonicEnd;
        let deadline = t;
        if (!(loadU16(host, s + SUB_CLOCK_FLAGS) & SUBCLOCK_ABSTIME)) {
          // Corrected rule: relative to the start time, not the end time.
          deadline = start + t;
          if (deadline > U64_MAX) continue;
        }
        if (deadline <= end) n++;
        continue;
      }
      error = Errno.INVAL;
    } else if (tag === EventType.FD_READ || tag === EventType.FD_WRITE) {
      const fd = loadU32(host, s + SUB_FD);
      if (fd === GATE_FD) {
        if (tag === EventType.FD_READ ? outcome.readable : outcome.writable) {
          storeU64(host, ev + EV_NBYTES, BigInt(MAX_PACKET_SIZE));
          n++;
        }
        continue;
      }
      if (tag === EventType.FD_WRITE && (fd === 1 || fd === 2)) {
        storeU64(host, ev + EV_NBYTES, DEBUG_WRITABLE);
        n++;
        continue;
      }
      error = fd === 0 || fd === 1 || fd === 2 ? Errno.PERM : Errno.BADF;
    } else {
      error = Errno.INVAL; // unknown tag
    }
    storeU16(host, ev + EV_ERROR, error);
    n++;
  }

  storeU32(host, nevents, n);
  return Errno.SUCCESS;
}
