import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cause } from '../instance/status.ts';
import { Exit, Trap } from '../instance/errors.ts';
import { FakeHost } from './fake-host.ts';
import * as wasi from './wasi.ts';

const SUCCESS = 0;
const AGAIN = 6;
const BADF = 8;
const FAULT = 21;
const INVAL = 28;
const NOTSOCK = 57;
const PERM = 63;
const NOTCAPABLE = 76;
const READ = 2n;
const WRITE = 64n;

const isOOB = (e: unknown): boolean => e instanceof Trap && e.trapCause === Cause.MEMORY_ACCESS_OUT_OF_BOUNDS;

describe('args and environment', () => {
  test('args_sizes_get stores 0 and 0', () => {
    const h = new FakeHost();
    h.setU32(100, 7);
    h.setU32(104, 7);
    assert.equal(wasi.args_sizes_get(h, 100, 104), SUCCESS);
    assert.equal(h.u32(100), 0);
    assert.equal(h.u32(104), 0);
  });

  test('args_sizes_get: FAULT for either null pointer, nothing stored', () => {
    const h = new FakeHost();
    h.setU32(100, 7);
    assert.equal(wasi.args_sizes_get(h, 0, 100), FAULT);
    assert.equal(wasi.args_sizes_get(h, 100, 0), FAULT);
    assert.equal(h.u32(100), 7);
  });

  test('args_get writes and checks nothing', () => {
    const h = new FakeHost({ memorySize: 0 });
    assert.equal(wasi.args_get(h, 0, 0), SUCCESS);
    assert.equal(wasi.args_get(h, -8, 123456), SUCCESS);
  });

  test('environ_sizes_get: 3 strings, 72 bytes; FAULT for null', () => {
    const h = new FakeHost();
    assert.equal(wasi.environ_sizes_get(h, 8, 12), SUCCESS);
    assert.equal(h.u32(8), 3);
    assert.equal(h.u32(12), 72);
    assert.equal(wasi.environ_sizes_get(h, 0, 12), FAULT);
    assert.equal(wasi.environ_sizes_get(h, 8, 0), FAULT);
  });

  test('environ_get writes the block byte-exact and three pointers', () => {
    const h = new FakeHost();
    h.memory.fill(0xee, 1000, 1100);
    h.memory.fill(0xee, 200, 216);
    assert.equal(wasi.environ_get(h, 200, 1000), SUCCESS);
    const expected = new Uint8Array(72);
    expected.set(new TextEncoder().encode('GATE_ABI_VERSION=0'), 0);
    expected.set(new TextEncoder().encode('GATE_FD=4'), 24);
    expected.set(new TextEncoder().encode('GATE_MAX_SEND_SIZE=65536'), 40);
    assert.deepEqual(h.memory.subarray(1000, 1072), expected);
    assert.equal(h.u8(1072), 0xee); // nothing beyond 72 bytes
    assert.deepEqual([h.u32(200), h.u32(204), h.u32(208)], [1000, 1024, 1040]);
    assert.equal(h.u32(212), 0xeeeeeeee);
  });

  test('environ_get: FAULT for null pointers', () => {
    const h = new FakeHost();
    assert.equal(wasi.environ_get(h, 0, 1000), FAULT);
    assert.equal(wasi.environ_get(h, 200, 0), FAULT);
    assert.equal(h.u8(1000), 0);
  });

  test('environ_get: a buffer running off the end traps after the words that fit', () => {
    const h = new FakeHost({ memorySize: 1024 });
    assert.throws(() => wasi.environ_get(h, 8, 1024 - 20), isOOB);
    assert.equal(h.text(1024 - 20, 16), 'GATE_ABI_VERSION');
    assert.equal(h.u32(8), 0); // pointers come after the block
  });

  test('a module without memory traps on every non-empty access', () => {
    const h = new FakeHost({ memorySize: 0 });
    assert.throws(() => wasi.args_sizes_get(h, 8, 16), isOOB);
    assert.throws(() => wasi.environ_get(h, 8, 16), isOOB);
    assert.throws(() => wasi.environ_sizes_get(h, 8, 16), isOOB);
    assert.throws(() => wasi.clock_res_get(h, 0, 8), isOOB);
    assert.deepEqual(h.traps, Array(4).fill(Cause.MEMORY_ACCESS_OUT_OF_BOUNDS));
    // Null checks come first.
    assert.equal(wasi.args_sizes_get(h, 0, 16), FAULT);
  });
});

describe('clocks', () => {
  test('clock_res_get: R for ids 0–3, INVAL beyond, FAULT for null', () => {
    const h = new FakeHost();
    for (let id = 0; id < 4; id++) {
      h.setU64(8, 0n);
      assert.equal(wasi.clock_res_get(h, id, 8), SUCCESS);
      assert.equal(h.u64(8), 1024n);
    }
    assert.equal(wasi.clock_res_get(h, 4, 8), INVAL);
    assert.equal(wasi.clock_res_get(h, -1, 8), INVAL);
    assert.equal(wasi.clock_res_get(h, 0, 0), FAULT);
  });

  test('clock_res_get caps the report at one second', () => {
    const h = new FakeHost({ timeResolution: 1n << 30n });
    assert.equal(wasi.clock_res_get(h, 1, 8), SUCCESS);
    assert.equal(h.u64(8), 1_000_000_000n);
  });

  test('clock_time_get: rounded realtime and monotonic', () => {
    const h = new FakeHost();
    h.realtimeNs = 1_700_000_000_123_456_789n;
    h.monotonicNs = 2_000_001_999n;
    assert.equal(wasi.clock_time_get(h, 0, 1n, 8), SUCCESS);
    assert.equal(h.u64(8), 1_700_000_000_123_456_512n);
    assert.equal(wasi.clock_time_get(h, 1, 1_000_000_000n, 8), SUCCESS);
    assert.equal(h.u64(8), 2_000_001_024n);
  });

  test('clock_time_get with the default resolution', () => {
    const h = new FakeHost({ timeResolution: 16_777_216n });
    h.monotonicNs = 1_020_000_000n;
    assert.equal(wasi.clock_time_get(h, 1, 0n, 8), SUCCESS);
    assert.equal(h.u64(8), 1_016_777_216n);
  });

  test('clock_time_get: FAULT, then INVAL, then deficiency for CPU clocks', () => {
    const h = new FakeHost();
    h.setU64(8, 99n);
    assert.equal(wasi.clock_time_get(h, 2, 1n, 0), FAULT);
    assert.equal(wasi.clock_time_get(h, 4, 1n, 8), INVAL);
    assert.equal(wasi.clock_time_get(h, 0xffffffff, 1n, 8), INVAL);
    assert.equal(wasi.clock_time_get(h, -1, 1n, 8), INVAL);
    assert.equal(h.deficiencies, 0);
    wasi.clock_time_get(h, 2, 1n, 8);
    wasi.clock_time_get(h, 3, 1n, 8);
    assert.equal(h.deficiencies, 2);
    assert.equal(h.u64(8), 99n); // nothing written
  });

  test('clock_time_get: out-of-bounds result traps', () => {
    const h = new FakeHost({ memorySize: 64 });
    assert.throws(() => wasi.clock_time_get(h, 0, 1n, 60), isOOB);
    assert.throws(() => wasi.clock_time_get(h, 0, 1n, -8), isOOB);
  });
});

describe('descriptors', () => {
  test('fd_fdstat_get records', () => {
    const h = new FakeHost();
    const cases: Array<[number, number, bigint]> = [
      [0, 0, 0n],
      [1, 0, WRITE],
      [2, 0, WRITE],
      [4, 4, READ | WRITE],
    ];
    for (const [fd, flags, rights] of cases) {
      h.memory.fill(0xee, 64, 96);
      assert.equal(wasi.fd_fdstat_get(h, fd, 64), SUCCESS);
      assert.equal(h.u8(64), 0, 'filetype');
      assert.equal(h.u8(65), 0xee, 'byte 1 untouched');
      assert.equal(h.u16(66), flags);
      assert.deepEqual([...h.memory.subarray(68, 72)], [0xee, 0xee, 0xee, 0xee], 'bytes 4–7 untouched');
      assert.equal(h.u64(72), rights);
      assert.equal(h.u64(80), 0n);
      assert.equal(h.u8(88), 0xee);
    }
  });

  test('fd_fdstat_get: BADF for absent fds, FAULT for null', () => {
    const h = new FakeHost();
    for (const fd of [3, 5, 9, -1]) assert.equal(wasi.fd_fdstat_get(h, fd, 64), BADF);
    assert.equal(wasi.fd_fdstat_get(h, 3, 0), FAULT);
    assert.equal(wasi.fd_fdstat_get(h, 0, 0), FAULT);
  });

  test('fd_fdstat_set_rights matrix (abi.md §2.6, testdata abi.cpp)', () => {
    const h = new FakeHost();
    const DATASYNC = 1n;
    const SEEK = 4n;
    const TELL = 32n;
    const ALLOCATE = 256n;
    const cases: Array<[number, bigint, bigint, number]> = [
      [0, 0n, 0n, SUCCESS],
      [0, 0n, READ, NOTCAPABLE],
      [0, READ, 0n, NOTCAPABLE],
      [0, ALLOCATE, 0n, NOTCAPABLE],
      [1, 0n, WRITE, NOTCAPABLE],
      [1, WRITE, 0n, SUCCESS],
      [1, READ, 0n, NOTCAPABLE],
      [1, READ | WRITE, 0n, NOTCAPABLE],
      [1, DATASYNC, 0n, NOTCAPABLE],
      [2, 0n, READ, NOTCAPABLE],
      [2, WRITE, 0n, SUCCESS],
      [2, READ, 0n, NOTCAPABLE],
      [2, READ | WRITE, 0n, NOTCAPABLE],
      [2, SEEK, 0n, NOTCAPABLE],
      [3, 0n, 0n, BADF],
      [3, READ, 0n, BADF],
      [3, 0n, WRITE, BADF],
      [5, 0n, 0n, BADF],
      [5, READ, 0n, BADF],
      [5, 0n, WRITE, BADF],
      [-1, 0n, 0n, BADF],
      [4, 0n, READ | WRITE, NOTCAPABLE],
      [4, READ | WRITE, 0n, SUCCESS],
      [4, READ | WRITE | TELL, 0n, NOTCAPABLE],
      [4, TELL, 0n, NOTCAPABLE],
      [4, -1n, 0n, NOTCAPABLE], // i64 arrives signed
      [4, READ | WRITE, -1n, NOTCAPABLE],
    ];
    for (const [fd, base, inh, want] of cases) {
      assert.equal(wasi.fd_fdstat_set_rights(h, fd, base, inh), want, `fd ${fd} base ${base} inh ${inh}`);
    }
    assert.equal(h.deficiencies, 0);
  });

  test('fd_fdstat_set_rights: dropping rights is a deficiency', () => {
    for (const [fd, base] of [
      [1, 0n],
      [2, 0n],
      [4, WRITE],
      [4, READ],
      [4, 0n],
    ] as const) {
      const h = new FakeHost();
      assert.equal(wasi.fd_fdstat_set_rights(h, fd, base, 0n), 0);
      assert.equal(h.deficiencies, 1, `fd ${fd} base ${base}`);
    }
  });

  test('fd_close: deficiency for existing fds, BADF otherwise', () => {
    for (const fd of [0, 1, 2, 4]) {
      const h = new FakeHost();
      wasi.fd_close(h, fd);
      assert.equal(h.deficiencies, 1);
    }
    const h = new FakeHost();
    for (const fd of [3, 5, 6, 9, 10, -1]) assert.equal(wasi.fd_close(h, fd), BADF);
    assert.equal(h.deficiencies, 0);
  });

  test('fd_renumber', () => {
    const h = new FakeHost();
    for (const fd of [0, 1, 2, 4]) assert.equal(wasi.fd_renumber(h, fd, fd), SUCCESS);
    for (const fd of [3, 5]) assert.equal(wasi.fd_renumber(h, fd, fd), BADF);
    for (let fd = 0; fd < 10; fd++) {
      assert.equal(wasi.fd_renumber(h, fd, 10), BADF);
      assert.equal(wasi.fd_renumber(h, 10, fd), BADF);
    }
    assert.equal(wasi.fd_renumber(h, 0, 3), BADF);
    assert.equal(wasi.fd_renumber(h, -1, 0), BADF);
    assert.equal(h.deficiencies, 0);
    for (const [from, to] of [
      [0, 1],
      [1, 4],
      [2, 0],
      [4, 1],
    ]) {
      const d = new FakeHost();
      wasi.fd_renumber(d, from, to);
      assert.equal(d.deficiencies, 1);
    }
  });

  test('fd_prestat_dir_name: FAULT, then INVAL for existing fds and BADF for others', () => {
    const h = new FakeHost({ memorySize: 0 }); // no memory is read
    for (let fd = 0; fd < 10; fd++) {
      assert.equal(wasi.fd_prestat_dir_name(h, fd, 4096, 4096), [0, 1, 2, 4].includes(fd) ? INVAL : BADF);
    }
    assert.equal(wasi.fd_prestat_dir_name(h, 0, 0, 1), FAULT);
    assert.equal(wasi.fd_prestat_dir_name(h, 3, 0, -1), FAULT);
    assert.equal(wasi.fd_prestat_dir_name(h, 0, 0, 0), INVAL);
  });
});

describe('fd_write', () => {
  test('fd 1 and 2 go to the debug log, total of all lengths', () => {
    const h = new FakeHost();
    h.put(1000, 'PASS\n');
    h.iovecs(100, [
      [1000, 3],
      [5000, 0],
      [1003, 2],
    ]);
    assert.equal(wasi.fd_write(h, 1, 100, 3, 200), SUCCESS);
    assert.equal(h.u32(200), 5);
    h.iovecs(100, [[1000, 5]]);
    assert.equal(wasi.fd_write(h, 2, 100, 1, 200), SUCCESS);
    assert.equal(h.u32(200), 5);
    assert.equal(h.logText(), 'PASS\nPASS\n');
  });

  test('debug log disabled: data ranges are not checked, total still reported', () => {
    const h = new FakeHost({ debugEnabled: false });
    h.iovecs(100, [
      [0xfffffff0, 0x100],
      [0x7fffffff, 0xffffff00],
    ]);
    assert.equal(wasi.fd_write(h, 1, 100, 2, 200), SUCCESS);
    assert.equal(h.u32(200), (0x100 + 0xffffff00) >>> 0); // u32 wrap
    assert.deepEqual(h.log, []);
    // The iovec array itself is still read with checks.
    assert.throws(() => wasi.fd_write(h, 1, 65536 - 4, 1, 200), isOOB);
  });

  test('debug log enabled: each range is checked in order', () => {
    const h = new FakeHost({ memorySize: 4096 });
    h.put(1000, 'ok');
    h.iovecs(100, [
      [1000, 2],
      [4095, 2],
    ]);
    h.setU32(200, 77);
    assert.throws(() => wasi.fd_write(h, 2, 100, 2, 200), isOOB);
    assert.equal(h.logText(), 'ok'); // the first iovec got through
    assert.equal(h.u32(200), 77);
  });

  test('fd 0 → PERM, others → BADF; FAULT rules', () => {
    const h = new FakeHost();
    h.iovecs(100, [[1000, 1]]);
    assert.equal(wasi.fd_write(h, 0, 100, 1, 200), PERM);
    for (const fd of [3, 5, 6, -1]) assert.equal(wasi.fd_write(h, fd, 100, 1, 200), BADF);
    assert.equal(wasi.fd_write(h, 1, 0, 1, 200), FAULT);
    assert.equal(wasi.fd_write(h, 1, 100, 1, 0), FAULT);
    assert.equal(wasi.fd_write(h, 3, 100, 1, 0), FAULT); // FAULT before BADF
    // A null iovec array is fine when the count is ≤ 0.
    assert.equal(wasi.fd_write(h, 1, 0, 0, 200), SUCCESS);
    assert.equal(wasi.fd_write(h, 4, 0, -5, 200), SUCCESS);
    assert.equal(h.u32(200), 0);
  });

  test('fd 4: writes until the first short write', () => {
    const h = new FakeHost();
    h.outputSpace = 10;
    h.put(1000, '0123456789abcdef');
    h.iovecs(100, [
      [1000, 4],
      [2000, 0],
      [1004, 8],
      [1012, 4],
    ]);
    assert.equal(wasi.fd_write(h, 4, 100, 4, 200), SUCCESS);
    assert.equal(h.u32(200), 10);
    assert.equal(new TextDecoder().decode(Uint8Array.from(h.output)), '0123456789');
  });

  test('fd 4: AGAIN when the first non-empty iovec moves nothing', () => {
    const h = new FakeHost();
    h.outputSpace = 0;
    h.setU32(200, 55);
    h.iovecs(100, [
      [1000, 0],
      [1000, 4],
    ]);
    assert.equal(wasi.fd_write(h, 4, 100, 2, 200), AGAIN);
    assert.equal(h.u32(200), 55);
    // Only empty iovecs: SUCCESS with 0.
    assert.equal(wasi.fd_write(h, 4, 100, 1, 200), SUCCESS);
    assert.equal(h.u32(200), 0);
  });

  test('fd 4: a bad range traps before any byte moves; earlier iovecs stay sent', () => {
    const h = new FakeHost({ memorySize: 4096 });
    h.put(1000, 'abcd');
    h.iovecs(100, [
      [1000, 4],
      [4000, 97],
    ]);
    assert.throws(() => wasi.fd_write(h, 4, 100, 2, 200), isOOB);
    assert.deepEqual(h.output, [...new TextEncoder().encode('abcd')]);
    // Wrap-around ranges trap too.
    h.iovecs(100, [[0xffffff00, 0x200]]);
    assert.throws(() => wasi.fd_write(h, 4, 100, 1, 200), isOOB);
  });

  test('iovec array records wrap like C pointers', () => {
    const h = new FakeHost();
    assert.throws(() => wasi.fd_write(h, 1, 0xfffffffc, 1, 200), isOOB);
  });
});

describe('fd_read', () => {
  test('fd 4: reads available bytes, stops at the first short read', () => {
    const h = new FakeHost();
    h.input = [1, 2, 3, 4, 5, 6];
    h.iovecs(100, [
      [1000, 4],
      [1100, 0],
      [2000, 4],
      [3000, 4],
    ]);
    assert.equal(wasi.fd_read(h, 4, 100, 4, 200), SUCCESS);
    assert.equal(h.u32(200), 6);
    assert.deepEqual([...h.memory.subarray(1000, 1004)], [1, 2, 3, 4]);
    assert.deepEqual([...h.memory.subarray(2000, 2004)], [5, 6, 0, 0]);
  });

  test('fd 4: AGAIN when nothing is pending', () => {
    const h = new FakeHost();
    h.iovecs(100, [
      [1000, 64],
      [1100, 64],
    ]);
    h.setU32(200, 9);
    assert.equal(wasi.fd_read(h, 4, 100, 2, 200), AGAIN);
    assert.equal(h.u32(200), 9);
  });

  test('fds 0, 1, 2 → PERM; 3, 5 → BADF; FAULT rules', () => {
    const h = new FakeHost();
    h.iovecs(100, [
      [1000, 64],
      [1100, 64],
      [1200, 64],
      [1300, 64],
    ]);
    for (const fd of [0, 1, 2]) assert.equal(wasi.fd_read(h, fd, 100, 4, 200), PERM);
    for (const fd of [3, 5]) assert.equal(wasi.fd_read(h, fd, 100, 4, 200), BADF);
    assert.equal(wasi.fd_read(h, 4, 0, 1, 200), FAULT);
    assert.equal(wasi.fd_read(h, 4, 100, 1, 0), FAULT);
  });

  test('fd 4: receive buffer out of bounds traps even with nothing pending', () => {
    const h = new FakeHost({ memorySize: 4096 });
    h.iovecs(100, [[4000, 200]]);
    assert.throws(() => wasi.fd_read(h, 4, 100, 1, 200), isOOB);
  });
});

describe('process and random', () => {
  test('proc_exit ends the run with the status', () => {
    const h = new FakeHost();
    assert.throws(() => wasi.proc_exit(h, 0), (e: unknown) => e instanceof Exit && e.result === 0);
    assert.throws(() => wasi.proc_exit(h, -3), (e: unknown) => e instanceof Exit && e.result === 1);
    assert.deepEqual(h.exits, [0, -3]);
  });

  test('proc_raise is always a deficiency', () => {
    const h = new FakeHost();
    wasi.proc_raise(h, 1);
    assert.equal(h.deficiencies, 1);
  });

  test('random_get: 16 bytes from the pool', () => {
    const h = new FakeHost();
    const pool = [...h.pool];
    assert.equal(wasi.random_get(h, 1000, 16), SUCCESS);
    assert.deepEqual([...h.memory.subarray(1000, 1016)], pool);
    assert.equal(h.deficiencies, 0);
  });

  test('random_get: the budget is cumulative; exhaustion mid-copy keeps earlier bytes', () => {
    const h = new FakeHost();
    const pool = [...h.pool];
    assert.equal(wasi.random_get(h, 1000, 10), SUCCESS);
    wasi.random_get(h, 2000, 10);
    assert.equal(h.deficiencies, 1);
    assert.deepEqual([...h.memory.subarray(2000, 2010)], [...pool.slice(10), 0, 0, 0, 0]);
  });

  test('random_get: 17 bytes is a deficiency after writing 16', () => {
    const h = new FakeHost();
    wasi.random_get(h, 1000, 17);
    assert.equal(h.deficiencies, 1);
    assert.notEqual(h.u8(1015), 0);
    assert.equal(h.u8(1016), 0);
    // After a resume the restarted call gets a fresh pool; 17 still does not fit.
    h.pool = Array(16).fill(7);
    wasi.random_get(h, 1000, 17);
    assert.equal(h.deficiencies, 2);
  });

  test('random_get: FAULT only with a length; length 0 succeeds anywhere', () => {
    const h = new FakeHost({ memorySize: 0 });
    assert.equal(wasi.random_get(h, 0, 1), FAULT);
    assert.equal(wasi.random_get(h, 0, -1), FAULT);
    assert.equal(wasi.random_get(h, 0, 0), SUCCESS);
    assert.equal(wasi.random_get(h, 12345, 0), SUCCESS);
  });

  test('random_get: running off the end traps after the bytes that fit', () => {
    const h = new FakeHost({ memorySize: 1024 });
    assert.throws(() => wasi.random_get(h, 1020, 8), isOOB);
    assert.notEqual(h.u8(1023), 0);
    assert.equal(h.pool.length, 11); // four written, the fifth taken then refused
  });

  test('sched_yield', () => {
    assert.equal(wasi.sched_yield(new FakeHost()), SUCCESS);
  });
});

describe('stubs and sockets', () => {
  // Arguments of every one-fd stub, the fd in its position.
  const oneFd: Record<string, (fd: number) => (number | bigint)[]> = {
    fd_advise: (fd) => [fd, 0n, 0n, 0],
    fd_allocate: (fd) => [fd, 0n, 0n],
    fd_datasync: (fd) => [fd],
    fd_fdstat_set_flags: (fd) => [fd, 0],
    fd_filestat_get: (fd) => [fd, 1000],
    fd_filestat_set_size: (fd) => [fd, 0n],
    fd_filestat_set_times: (fd) => [fd, 0n, 0n, 0],
    fd_pread: (fd) => [fd, 1000, 1, 0n, 2000],
    fd_prestat_get: (fd) => [fd, 1000],
    fd_pwrite: (fd) => [fd, 1000, 1, 0n, 2000],
    fd_readdir: (fd) => [fd, 1000, 100, 0n, 2000],
    fd_seek: (fd) => [fd, 0n, 0, 2000],
    fd_sync: (fd) => [fd],
    fd_tell: (fd) => [fd, 2000],
    path_create_directory: (fd) => [fd, 1000, 3],
    path_filestat_get: (fd) => [fd, 0, 1000, 3, 2000],
    path_filestat_set_times: (fd) => [fd, 0, 1000, 3, 0n, 0n, 0],
    path_open: (fd) => [fd, 0, 1000, 3, 0, 0n, 0n, 0, 2000],
    path_readlink: (fd) => [fd, 1000, 3, 2000, 10, 3000],
    path_remove_directory: (fd) => [fd, 1000, 3],
    path_unlink_file: (fd) => [fd, 1000, 3],
    path_symlink: (fd) => [1000, 3, fd, 2000, 3],
    sock_shutdown: (fd) => [fd, 0],
  };

  test('one-fd stubs: PERM for 0, 1, 2, 4 and BADF for 3, 5–9, no memory access', () => {
    const h = new FakeHost({ memorySize: 0 });
    const table = wasi as unknown as Record<string, (...args: unknown[]) => number>;
    for (const [name, args] of Object.entries(oneFd)) {
      for (let fd = 0; fd < 10; fd++) {
        const want = [0, 1, 2, 4].includes(fd) ? PERM : BADF;
        assert.equal(table[name](h, ...args(fd)), want, `${name}(${fd})`);
      }
      assert.equal(table[name](h, ...args(-1)), BADF);
    }
    // path_symlink's fd is the third argument, not the first.
    assert.equal(wasi.path_symlink(h, 3, 0, 4, 0, 0), PERM);
    assert.equal(wasi.path_symlink(h, 4, 0, 3, 0, 0), BADF);
  });

  test('path_link and path_rename: both fds for all 10 × 10 pairs', () => {
    const h = new FakeHost({ memorySize: 0 });
    const exists = (fd: number): boolean => [0, 1, 2, 4].includes(fd);
    for (let a = 0; a < 10; a++) {
      for (let b = 0; b < 10; b++) {
        const want = exists(a) && exists(b) ? PERM : BADF;
        assert.equal(wasi.path_link(h, a, 0, 1000, 3, b, 2000, 3), want, `link ${a} ${b}`);
        assert.equal(wasi.path_rename(h, a, 1000, 3, b, 2000, 3), want, `rename ${a} ${b}`);
      }
    }
  });

  test('sock_recv and sock_send', () => {
    const h = new FakeHost({ memorySize: 0 });
    const recv = [PERM, PERM, PERM, BADF, NOTSOCK, BADF, BADF, BADF, BADF, BADF];
    const send = [PERM, NOTSOCK, NOTSOCK, BADF, NOTSOCK, BADF, BADF, BADF, BADF, BADF];
    for (let fd = 0; fd < 10; fd++) {
      assert.equal(wasi.sock_recv(h, fd), recv[fd], `recv ${fd}`);
      assert.equal(wasi.sock_send(h, fd), send[fd], `send ${fd}`);
    }
    assert.equal(wasi.sock_recv(h, -4), BADF);
    assert.equal(wasi.sock_send(h, -4), BADF);
  });
});
