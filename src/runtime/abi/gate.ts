// Gate's own imports: gate.fd_N and gate.io_N (abi.md §2.7).

import type { AbiHost } from './host.ts';
import { GATE_FD } from './errno.ts';
import { loadIoVec, loadIoVecLen, range, storeU32, storeU64, u32 } from './memory.ts';
import { roundTime } from './time.ts';

/** Below this timeout (ns) a call with something to transfer does not wait at all. */
const NO_WAIT_BELOW = 1000n;

export function fd(_host: AbiHost): number {
  return GATE_FD;
}

export function io(
  host: AbiHost,
  recv: number,
  recvLen: number,
  nrecvPtr: number,
  send: number,
  sendLen: number,
  nsentPtr: number,
  timeout: bigint,
  flagsPtr: number,
): void {
  // Only reads of memory before the wait: the call may be re-entered.
  recv = u32(recv);
  send = u32(send);
  nrecvPtr = u32(nrecvPtr);
  nsentPtr = u32(nsentPtr);
  flagsPtr = u32(flagsPtr);

  let sending = false;
  for (let i = 0; i < sendLen; i++) {
    if (loadIoVecLen(host, send, i) > 0) {
      sending = true;
      break;
    }
  }

  let noWait = false;
  if (timeout >= 0n && timeout < NO_WAIT_BELOW) {
    noWait = sending;
    for (let i = 0; !noWait && i < recvLen; i++) {
      if (loadIoVecLen(host, recv, i) > 0) noWait = true;
    }
  }

  let readable = true;
  let writable = true;
  if (!noWait) {
    const outcome = host.wait({
      readable: true, // input always ends the wait, even without receive buffers
      writable: sending,
      timeout: timeout < 0n ? null : roundTime(timeout, host.timeResolution),
    });
    if (outcome === null) return;
    readable = outcome.readable;
    writable = outcome.writable;
  }

  // Writes before reads.
  let nsent = 0;
  if (writable) {
    for (let i = 0; i < sendLen; i++) {
      const iov = loadIoVec(host, send, i);
      const n = iov.len === 0 ? 0 : host.write(range(host, iov.base, iov.len));
      nsent = (nsent + n) >>> 0;
      if (n < iov.len) break;
    }
  }

  let nrecv = 0;
  if (readable) {
    for (let i = 0; i < recvLen; i++) {
      const iov = loadIoVec(host, recv, i);
      const n = iov.len === 0 ? 0 : host.read(range(host, iov.base, iov.len));
      nrecv = (nrecv + n) >>> 0;
      if (n < iov.len) break;
    }
  }

  if (nsentPtr !== 0) storeU32(host, nsentPtr, nsent);
  if (nrecvPtr !== 0) storeU32(host, nrecvPtr, nrecv);
  if (flagsPtr !== 0) {
    // Only a call that can report the flag consumes it.
    const flags = host.takeResumedFlag() ? 1n : 0n;
    storeU64(host, flagsPtr, flags);
  }
}
