// The WASI preview1 subset Gate provides (abi.md §2.2–§2.6, §2.9). Each
// function takes the host first and then the wasm arguments exactly as V8
// delivers them: i32 as signed numbers, i64 as BigInt.
//
// Calls that may end in an ABI deficiency do nothing observable before
// host.deficiency() and return right after it (the call is restarted from the
// beginning on resume). random_get is the documented exception: bytes copied
// before the pool ran dry stay written.

import type { AbiHost } from './host.ts';
import { Errno, FDFLAG_NONBLOCK, GATE_FD, Rights, fdError, fdExists } from './errno.ts';
import { loadIoVec, ptrAdd, range, storeU16, storeU32, storeU64, storeU8, u32 } from './memory.ts';
import { reportedResolution, roundTime } from './time.ts';

export { poll_oneoff } from './poll.ts';

export function args_get(_host: AbiHost, _argv: number, _buf: number): number {
  return Errno.SUCCESS; // no arguments: nothing to write, nothing checked
}

export function args_sizes_get(host: AbiHost, argc: number, size: number): number {
  argc = u32(argc);
  size = u32(size);
  if (argc === 0 || size === 0) return Errno.FAULT;
  storeU32(host, argc, 0);
  storeU32(host, size, 0);
  return Errno.SUCCESS;
}

/** The environment block: three NUL-terminated strings at offsets 0, 24, 40 of 72 zeroed bytes. */
const ENVIRON_SIZE = 72;
const ENVIRON_STRINGS: ReadonlyArray<[number, string]> = [
  [0, 'GATE_ABI_VERSION=0'],
  [24, 'GATE_FD=4'],
  [40, 'GATE_MAX_SEND_SIZE=65536'],
];
const ENVIRON_BLOCK: readonly bigint[] = (() => {
  const block = new Uint8Array(ENVIRON_SIZE);
  for (const [offset, s] of ENVIRON_STRINGS) {
    for (let i = 0; i < s.length; i++) block[offset + i] = s.charCodeAt(i);
  }
  const view = new DataView(block.buffer);
  const words: bigint[] = [];
  for (let i = 0; i < ENVIRON_SIZE; i += 8) words.push(view.getBigUint64(i, true));
  return words;
})();

export function environ_get(host: AbiHost, env: number, buf: number): number {
  env = u32(env);
  buf = u32(buf);
  if (env === 0 || buf === 0) return Errno.FAULT;
  // Gate stores the block as nine u64 words, then the three pointers; an
  // out-of-bounds word traps after the earlier ones were written.
  for (let i = 0; i < ENVIRON_BLOCK.length; i++) storeU64(host, buf + 8 * i, ENVIRON_BLOCK[i]);
  for (let i = 0; i < ENVIRON_STRINGS.length; i++) {
    storeU32(host, env + 4 * i, ptrAdd(buf, ENVIRON_STRINGS[i][0]));
  }
  return Errno.SUCCESS;
}

export function environ_sizes_get(host: AbiHost, count: number, size: number): number {
  count = u32(count);
  size = u32(size);
  if (count === 0 || size === 0) return Errno.FAULT;
  storeU32(host, count, ENVIRON_STRINGS.length);
  storeU32(host, size, ENVIRON_SIZE);
  return Errno.SUCCESS;
}

export function clock_res_get(host: AbiHost, id: number, out: number): number {
  out = u32(out);
  if (out === 0) return Errno.FAULT;
  if (u32(id) >= 4) return Errno.INVAL;
  storeU64(host, out, reportedResolution(host.timeResolution));
  return Errno.SUCCESS;
}

export function clock_time_get(host: AbiHost, id: number, _precision: bigint, out: number): number {
  // Gate picks a coarse or fine host clock from the precision; the host
  // offers one clock of each kind, so the precision changes nothing here.
  out = u32(out);
  id = u32(id);
  if (out === 0) return Errno.FAULT;
  if (id >= 4) return Errno.INVAL;
  if (id >= 2) {
    host.deficiency(); // CPU-time clocks
    return 0;
  }
  const now = id === 0 ? host.realtime() : host.monotonic();
  storeU64(host, out, roundTime(now, host.timeResolution));
  return Errno.SUCCESS;
}

export function fd_close(host: AbiHost, fd: number): number {
  if (fdExists(u32(fd))) {
    host.deficiency();
    return 0;
  }
  return Errno.BADF;
}

export function fd_fdstat_get(host: AbiHost, fd: number, out: number): number {
  fd = u32(fd);
  out = u32(out);
  if (out === 0) return Errno.FAULT;
  let flags = 0;
  let rights = 0n;
  if (fd === GATE_FD) {
    flags = FDFLAG_NONBLOCK;
    rights = Rights.FD_READ | Rights.FD_WRITE;
  } else if (fd === 1 || fd === 2) {
    rights = Rights.FD_WRITE;
  } else if (fd !== 0) {
    return Errno.BADF;
  }
  // Bytes 1 and 4–7 (padding) are left as they were.
  storeU8(host, out, 0); // filetype unknown
  storeU16(host, out + 2, flags);
  storeU64(host, out + 8, rights);
  storeU64(host, out + 16, 0n);
  return Errno.SUCCESS;
}

export function fd_fdstat_set_rights(host: AbiHost, fd: number, base: bigint, inheriting: bigint): number {
  fd = u32(fd);
  base = BigInt.asUintN(64, base);
  inheriting = BigInt.asUintN(64, inheriting);
  let current: bigint;
  if (fd === GATE_FD) current = Rights.FD_READ | Rights.FD_WRITE;
  else if (fd === 1 || fd === 2) current = Rights.FD_WRITE;
  else if (fd === 0) current = 0n;
  else return Errno.BADF;

  if (inheriting !== 0n) return Errno.NOTCAPABLE;
  if (base === current) return Errno.SUCCESS;
  if ((base & ~current) !== 0n) return Errno.NOTCAPABLE; // asks for rights it never had
  // Dropping rights cannot be honoured (fd 0 has none to drop, so never gets here).
  host.deficiency();
  return 0;
}

export function fd_prestat_dir_name(_host: AbiHost, fd: number, buf: number, len: number): number {
  if (u32(len) > 0 && u32(buf) === 0) return Errno.FAULT;
  // The intended table values; Gate's library reads them from the program's
  // memory by mistake (abi.md §2.9).
  return fdError(u32(fd), Errno.INVAL);
}

export function fd_read(host: AbiHost, fd: number, iovs: number, n: number, nread: number): number {
  fd = u32(fd);
  iovs = u32(iovs);
  nread = u32(nread);
  if ((n > 0 && iovs === 0) || nread === 0) return Errno.FAULT;
  if (fd === GATE_FD) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      const iov = loadIoVec(host, iovs, i);
      const got = iov.len === 0 ? 0 : host.read(range(host, iov.base, iov.len));
      total = (total + got) >>> 0;
      if (got < iov.len) {
        if (total === 0) return Errno.AGAIN;
        break;
      }
    }
    storeU32(host, nread, total);
    return Errno.SUCCESS;
  }
  if (fd === 0 || fd === 1 || fd === 2) return Errno.PERM;
  return Errno.BADF;
}

export function fd_write(host: AbiHost, fd: number, iovs: number, n: number, nwritten: number): number {
  fd = u32(fd);
  iovs = u32(iovs);
  nwritten = u32(nwritten);
  if ((n > 0 && iovs === 0) || nwritten === 0) return Errno.FAULT;
  let total = 0;
  if (fd === GATE_FD) {
    for (let i = 0; i < n; i++) {
      const iov = loadIoVec(host, iovs, i);
      const put = iov.len === 0 ? 0 : host.write(range(host, iov.base, iov.len));
      total = (total + put) >>> 0;
      if (put < iov.len) {
        if (total === 0) return Errno.AGAIN;
        break;
      }
    }
  } else if (fd === 1 || fd === 2) {
    for (let i = 0; i < n; i++) {
      const iov = loadIoVec(host, iovs, i);
      // A disabled log does not look at the data at all, so bad ranges pass.
      if (host.debugEnabled && iov.len > 0) host.debug(range(host, iov.base, iov.len).slice());
      total = (total + iov.len) >>> 0;
    }
  } else if (fd === 0) {
    return Errno.PERM;
  } else {
    return Errno.BADF;
  }
  storeU32(host, nwritten, total);
  return Errno.SUCCESS;
}

export function fd_renumber(host: AbiHost, from: number, to: number): number {
  from = u32(from);
  to = u32(to);
  if (fdExists(from) && fdExists(to)) {
    if (from === to) return Errno.SUCCESS;
    host.deficiency();
    return 0;
  }
  return Errno.BADF;
}

export function proc_exit(host: AbiHost, status: number): never {
  return host.exit(status);
}

export function proc_raise(host: AbiHost, _sig: number): number {
  host.deficiency();
  return 0;
}

export function random_get(host: AbiHost, buf: number, len: number): number {
  buf = u32(buf);
  len = u32(len);
  if (len > 0 && buf === 0) return Errno.FAULT;
  // One byte at a time, like Gate: an empty pool or a bad address stops the
  // copy part-way, with the earlier bytes already written.
  for (let i = 0; i < len; i++) {
    const b = host.random(1);
    if (b.length === 0) {
      host.deficiency();
      return 0;
    }
    storeU8(host, ptrAdd(buf, i), b[0]);
  }
  return Errno.SUCCESS;
}

export function sched_yield(_host: AbiHost): number {
  return Errno.SUCCESS;
}

export function sock_recv(_host: AbiHost, fd: number): number {
  fd = u32(fd);
  if (fd === GATE_FD) return Errno.NOTSOCK;
  return fdError(fd, Errno.PERM);
}

export function sock_send(_host: AbiHost, fd: number): number {
  fd = u32(fd);
  if (fd === 1 || fd === 2 || fd === GATE_FD) return Errno.NOTSOCK;
  return fdError(fd, Errno.PERM);
}

/** A stub whose only fd is argument `at` (0-based, after the host). */
function stubFd(at: number): (host: AbiHost, ...args: (number | bigint)[]) => number {
  return (_host, ...args) => fdError(u32(Number(args[at])), Errno.PERM);
}

/** A stub with two fds: the first must exist, then the second decides. */
function stubFdFd(at1: number, at2: number): (host: AbiHost, ...args: (number | bigint)[]) => number {
  return (_host, ...args) => fdError(u32(Number(args[at1])), fdError(u32(Number(args[at2])), Errno.PERM));
}

export const fd_advise = stubFd(0);
export const fd_allocate = stubFd(0);
export const fd_datasync = stubFd(0);
export const fd_fdstat_set_flags = stubFd(0);
export const fd_filestat_get = stubFd(0);
export const fd_filestat_set_size = stubFd(0);
export const fd_filestat_set_times = stubFd(0);
export const fd_pread = stubFd(0);
export const fd_prestat_get = stubFd(0);
export const fd_pwrite = stubFd(0);
export const fd_readdir = stubFd(0);
export const fd_seek = stubFd(0);
export const fd_sync = stubFd(0);
export const fd_tell = stubFd(0);
export const path_create_directory = stubFd(0);
export const path_filestat_get = stubFd(0);
export const path_filestat_set_times = stubFd(0);
export const path_link = stubFdFd(0, 4);
export const path_open = stubFd(0);
export const path_readlink = stubFd(0);
export const path_remove_directory = stubFd(0);
export const path_rename = stubFdFd(0, 3);
export const path_symlink = stubFd(2);
export const path_unlink_file = stubFd(0);
export const sock_shutdown = stubFd(0);
