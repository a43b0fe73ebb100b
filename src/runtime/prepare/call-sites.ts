// Gate's call-site numbering (docs/snapshot.md, "Call sites").
//
// A suspended stack names each frame's position by a module-wide call-site
// index, numbered the way Gate's compiler (wag) numbers the points where
// machine code can be interrupted: three entry-routine sites, then one body
// per imported function (Gate's ABI library code behind the import), then
// every defined function in index order, each with its entry, its calls,
// every instruction that can trap, and the back-edge checks of its loops. We
// number the same way, so that our frames are Gate's frames: a stack we save
// is a `gate.stack` Gate can resume, and Gate's stacks resume here.

import { Op, MiscOp } from '../wasm/instructions.ts';

/** Sites of the entry routine (before any function): nothing run, start running, entry running. */
export const ENTRY_ROUTINE_SITES = 3;
export const SITE_NOTHING_RUN = 0;
export const SITE_START_RUNNING = 1;
export const SITE_ENTRY_RUNNING = 2;

/**
 * Call sites an instruction records in a defined function, not counting
 * back-edge checks (which depend on control flow) or the function entry.
 * call_indirect records two trap sites (index out of bounds, signature
 * mismatch) before its call site.
 */
export function instructionSites(op: number, sub: number): number {
  if (op >= 0x28 && op <= 0x40) return 1; // loads, stores, memory.size, memory.grow
  switch (op) {
    case Op.Unreachable:
    case Op.Call:
      return 1;
    case Op.CallIndirect:
      return 3;
    case 0x6d: // i32.div_s: zero divisor, overflow
    case 0x7f: // i64.div_s
      return 2;
    case 0x6e: // i32.div_u
    case 0x6f: // i32.rem_s
    case 0x70: // i32.rem_u
    case 0x80: // i64.div_u
    case 0x81: // i64.rem_s
    case 0x82: // i64.rem_u
    case 0xa8: // trapping float-to-int truncations
    case 0xa9:
    case 0xaa:
    case 0xab:
    case 0xae:
    case 0xaf:
    case 0xb0:
    case 0xb1:
      return 1;
    case Op.PrefixMisc:
      // Gate supports memory.copy and memory.fill; memory.init counts the
      // same way by our convention (Gate cannot compile modules that use it).
      return sub === MiscOp.MemoryCopy || sub === MiscOp.MemoryFill || sub === MiscOp.MemoryInit ? 1 : 0;
    case Op.PrefixSimd:
      // Our convention for memory accesses Gate does not compile: one site, like its loads and stores.
      return sub <= 0x0b || (sub >= 0x54 && sub <= 0x5d) ? 1 : 0;
    default:
      return 0;
  }
}

/**
 * Sites in Gate's ABI library body behind each import it resolves (entry,
 * memory accesses, traps; library bodies record no calls and no loop checks),
 * for the library whose checksum Gate reports as 0x326f12bb84c9c9ed. Keyed by
 * the library function an import resolves to (see abi/imports.ts).
 */
export const LIBRARY_SITES: Readonly<Record<string, number>> = {
  'gate.fd': 1,
  'gate.io': 12,
  'wasi.args_get': 1,
  'wasi.args_sizes_get': 3,
  'wasi.clock_res_get': 2,
  'wasi.clock_time_get': 3,
  'wasi.environ_get': 13,
  'wasi.environ_sizes_get': 3,
  'wasi.fd_advise': 2,
  'wasi.fd_allocate': 2,
  'wasi.fd_close': 2,
  'wasi.fd_datasync': 2,
  'wasi.fd_fdstat_get': 5,
  'wasi.fd_fdstat_set_flags': 2,
  'wasi.fd_fdstat_set_rights': 3,
  'wasi.fd_filestat_get': 2,
  'wasi.fd_filestat_set_size': 2,
  'wasi.fd_filestat_set_times': 2,
  'wasi.fd_pread': 2,
  'wasi.fd_prestat_dir_name': 2,
  'wasi.fd_prestat_get': 2,
  'wasi.fd_pwrite': 2,
  'wasi.fd_read': 4,
  'wasi.fd_readdir': 2,
  'wasi.fd_renumber': 2,
  'wasi.fd_seek': 2,
  'wasi.fd_sync': 2,
  'wasi.fd_tell': 2,
  'wasi.fd_write': 6,
  'wasi.path_create_directory': 2,
  'wasi.path_filestat_get': 2,
  'wasi.path_filestat_set_times': 2,
  'wasi.path_link': 2,
  'wasi.path_open': 2,
  'wasi.path_readlink': 2,
  'wasi.path_remove_directory': 2,
  'wasi.path_rename': 2,
  'wasi.path_symlink': 2,
  'wasi.path_unlink_file': 2,
  'wasi.poll_oneoff': 34,
  'wasi.proc_exit': 2,
  'wasi.proc_raise': 2,
  'wasi.random_get': 3,
  'wasi.sched_yield': 1,
  'wasi.sock_recv': 1,
  'wasi.sock_send': 2,
  'wasi.sock_shutdown': 2,
};

/** Library body sites of an import we do not know from Gate's library: its entry only. */
export const DEFAULT_LIBRARY_SITES = 1;
