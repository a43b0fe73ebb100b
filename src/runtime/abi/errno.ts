// WASI preview1 numbers used by Gate's ABI (abi.md §2.1), plus the fixed
// descriptor table every program sees.

export const Errno = {
  SUCCESS: 0,
  AGAIN: 6,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOTSOCK: 57,
  PERM: 63,
  NOTCAPABLE: 76,
} as const;
export type Errno = (typeof Errno)[keyof typeof Errno];

/** The packet descriptor (`gate.fd_N`, environment `GATE_FD`). */
export const GATE_FD = 4;

/** Largest packet in either direction; also what poll reports as ready bytes on fd 4. */
export const MAX_PACKET_SIZE = 65536;

export const Rights = {
  FD_READ: 0x2n,
  FD_WRITE: 0x40n,
} as const;

export const FDFLAG_NONBLOCK = 0x4;

export const EventType = {
  CLOCK: 0,
  FD_READ: 1,
  FD_WRITE: 2,
} as const;

export const SUBCLOCK_ABSTIME = 0x1;

/** fds that exist: 0, 1, 2 and the packet descriptor; 3 is deliberately absent. */
export function fdExists(fd: number): boolean {
  return fd === 0 || fd === 1 || fd === 2 || fd === GATE_FD;
}

/** Gate's stub answer: err for an existing fd, BADF for any other (fd is unsigned). */
export function fdError(fd: number, err: Errno): Errno {
  return fdExists(fd) ? err : Errno.BADF;
}
