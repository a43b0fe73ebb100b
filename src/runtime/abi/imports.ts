// Import name resolution and signatures (abi.md §1.1–§1.2), and the import
// object that links a program to the ABI implementation.

import type { AbiHost } from './host.ts';
import * as gate from './gate.ts';
import * as wasi from './wasi.ts';
import { goQuote } from '../go-quote.ts';

export type ValueType = string; // 'i32', 'i64', 'f32', 'f64', ...
export type ImportKind = 'func' | 'table' | 'memory' | 'global';

/** One import of a module, as the loader describes it. */
export interface ModuleImport {
  module: string;
  field: string;
  kind: ImportKind;
  /** Function parameter types (func imports). */
  params?: readonly ValueType[];
  /** Function result types (func imports). */
  results?: readonly ValueType[];
  /** Global imports: whether the global is mutable (refused earlier, with another message). */
  mutable?: boolean;
}

/** A refused import; the message is Gate's, word for word ("bad program"). */
export class AbiImportError extends Error {
  readonly code = 'ERR_ABI_IMPORT';
  constructor(message: string) {
    super(message);
    this.name = 'AbiImportError';
  }
}

interface Signature {
  params: readonly ValueType[];
  results: readonly ValueType[];
}

const I = 'i32';
const L = 'i64';
const errnoResult = [I] as const;

function sig(params: readonly ValueType[], results: readonly ValueType[] = errnoResult): Signature {
  return { params, results };
}

/** The 45 WASI functions (preview1 names; also served for wasi_unstable). */
const WASI_SIGNATURES: Readonly<Record<string, Signature>> = {
  args_get: sig([I, I]),
  args_sizes_get: sig([I, I]),
  clock_res_get: sig([I, I]),
  clock_time_get: sig([I, L, I]),
  environ_get: sig([I, I]),
  environ_sizes_get: sig([I, I]),
  fd_advise: sig([I, L, L, I]),
  fd_allocate: sig([I, L, L]),
  fd_close: sig([I]),
  fd_datasync: sig([I]),
  fd_fdstat_get: sig([I, I]),
  fd_fdstat_set_flags: sig([I, I]),
  fd_fdstat_set_rights: sig([I, L, L]),
  fd_filestat_get: sig([I, I]),
  fd_filestat_set_size: sig([I, L]),
  fd_filestat_set_times: sig([I, L, L, I]),
  fd_pread: sig([I, I, I, L, I]),
  fd_prestat_dir_name: sig([I, I, I]),
  fd_prestat_get: sig([I, I]),
  fd_pwrite: sig([I, I, I, L, I]),
  fd_read: sig([I, I, I, I]),
  fd_readdir: sig([I, I, I, L, I]),
  fd_renumber: sig([I, I]),
  fd_seek: sig([I, L, I, I]),
  fd_sync: sig([I]),
  fd_tell: sig([I, I]),
  fd_write: sig([I, I, I, I]),
  path_create_directory: sig([I, I, I]),
  path_filestat_get: sig([I, I, I, I, I]),
  path_filestat_set_times: sig([I, I, I, I, L, L, I]),
  path_link: sig([I, I, I, I, I, I, I]),
  path_open: sig([I, I, I, I, I, L, L, I, I]),
  path_readlink: sig([I, I, I, I, I, I]),
  path_remove_directory: sig([I, I, I]),
  path_rename: sig([I, I, I, I, I, I]),
  path_symlink: sig([I, I, I, I, I]),
  path_unlink_file: sig([I, I, I]),
  poll_oneoff: sig([I, I, I, I]),
  proc_exit: sig([I], []),
  proc_raise: sig([I]),
  random_get: sig([I, I]),
  sched_yield: sig([]),
  sock_recv: sig([I, I, I, I, I, I]),
  sock_send: sig([I, I, I, I, I]),
  sock_shutdown: sig([I, I]),
};

const GATE_SIGNATURES: Readonly<Record<string, Signature>> = {
  fd: sig([]),
  io: sig([I, I, I, I, I, I, L, I], []),
};

/** The WASI functions that may end in an ABI deficiency or wait (abi.md §7.1). */
const BLOCKING_WASI = new Set([
  'poll_oneoff',
  'clock_time_get',
  'random_get',
  'proc_raise',
  'fd_close',
  'fd_renumber',
  'fd_fdstat_set_rights',
]);

const WASI_MODULE = 'wasi_snapshot_preview1';
const WASI_UNSTABLE_MODULE = 'wasi_unstable';
const GATE_MODULE = 'gate';
/** Smallest receive size a program may declare in gate.fd_N / gate.io_N. */
const MIN_RECV_SIZE = 65536;
const U32_MAX = 0xffffffff;

/** Where an import resolves: a WASI function or one of Gate's two. */
export interface ResolvedImport {
  namespace: 'wasi' | 'gate';
  /** WASI function name, or 'fd' / 'io'. */
  name: string;
  signature: Signature;
}

/** Resolve (module, field) or throw Gate's refusal for the name. */
export function resolveImport(module: string, field: string): ResolvedImport {
  let m = module;
  let f = field;
  if (m === 'env') {
    if (f.startsWith('__gate_')) {
      m = GATE_MODULE;
      f = f.slice(7);
    } else if (f.startsWith('__wasi_')) {
      m = WASI_MODULE;
      f = f.slice(7);
    }
  }

  if (m === WASI_MODULE || m === WASI_UNSTABLE_MODULE) {
    if (Object.hasOwn(WASI_SIGNATURES, f)) return { namespace: 'wasi', name: f, signature: WASI_SIGNATURES[f] };
  } else if (m === GATE_MODULE) {
    const i = f.lastIndexOf('_');
    if (i > 0) {
      const name = f.slice(0, i);
      if (Object.hasOwn(GATE_SIGNATURES, name)) {
        checkSizeSuffix(f.slice(i + 1), f);
        return { namespace: 'gate', name, signature: GATE_SIGNATURES[name] };
      }
    }
  }
  throw new AbiImportError(`import function not supported: ${goQuote(module)} ${goQuote(field)}`);
}

/** The receive-size suffix: plain decimal ≥ 65536, any magnitude; checked, then ignored. */
function checkSizeSuffix(suffix: string, field: string): void {
  if (suffix === '' || suffix.startsWith('0') || !/^[0-9]+$/.test(suffix)) {
    throw new AbiImportError(`invalid size suffix in symbol: ${field}`);
  }
  // Values beyond 32 bits are accepted without comparison (Go's range error path).
  if (suffix.length <= 10 && Number(suffix) <= U32_MAX && Number(suffix) < MIN_RECV_SIZE) {
    throw new AbiImportError(`value of symbol size suffix is too small: ${field}`);
  }
}

function formatSignature(params: readonly ValueType[], results: readonly ValueType[]): string {
  let s = `(${params.join(', ')})`;
  if (results.length === 1) s += ` ${results[0]}`;
  else if (results.length > 1) s += ` (${results.join(', ')})`;
  return s;
}

function sameTypes(a: readonly ValueType[], b: readonly ValueType[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/** Most imported globals a module may have (wag). */
const MAX_GLOBALS = 32;

/**
 * Check a module's imports the way Gate does and throw AbiImportError for the
 * first refusal. Order as in Gate: the import section is scanned first
 * (memory/table imports, mutable or too many globals), then every function
 * import is resolved in order, then the global imports.
 */
export function checkImports(imports: readonly ModuleImport[]): void {
  let globals = 0;
  imports.forEach((imp, i) => {
    if (imp.kind === 'memory' || imp.kind === 'table') {
      throw new AbiImportError(`import kind not supported: ${imp.kind}`);
    }
    if (imp.kind === 'global') {
      if (globals >= MAX_GLOBALS) throw new AbiImportError('too many imported globals');
      if (imp.mutable) throw new AbiImportError(`unsupported mutable global in import #${i}`);
      globals++;
    }
  });

  for (const imp of imports) {
    if (imp.kind !== 'func') continue;
    const { signature } = resolveImport(imp.module, imp.field);
    const params = imp.params ?? [];
    const results = imp.results ?? [];
    if (!sameTypes(params, signature.params) || !sameTypes(results, signature.results)) {
      throw new AbiImportError(
        `function ${imp.module}.${imp.field} ${formatSignature(signature.params, signature.results)} ` +
          `imported with wrong signature ${formatSignature(params, results)}`,
      );
    }
  }

  for (const imp of imports) {
    if (imp.kind === 'global') {
      throw new AbiImportError(`import global not supported: ${goQuote(imp.module)} ${goQuote(imp.field)}`);
    }
  }
}

/** Whether an import may take the stack down (wait or ABI deficiency), so calls to it must be resumable. */
export function isBlockingImport(module: string, field: string): boolean {
  let r: ResolvedImport;
  try {
    r = resolveImport(module, field);
  } catch {
    return false;
  }
  return r.namespace === 'gate' ? r.name === 'io' : BLOCKING_WASI.has(r.name);
}

// Every implementation takes the host first, then the wasm arguments.
type Implementation = (host: AbiHost, ...args: never[]) => unknown;

const GATE_IMPLEMENTATIONS: Readonly<Record<string, Implementation>> = {
  fd: gate.fd,
  io: gate.io,
};

function implementation(r: ResolvedImport): Implementation {
  const table: Readonly<Record<string, unknown>> = r.namespace === 'gate' ? GATE_IMPLEMENTATIONS : wasi;
  const fn = table[r.name];
  if (typeof fn !== 'function') throw new Error(`no implementation for ${r.namespace}.${r.name}`);
  return fn as Implementation;
}

/**
 * The WebAssembly import object for a module whose imports passed
 * checkImports, keyed by the module's own (untranslated) names. Non-function
 * imports are skipped; `kind` may also be WebAssembly's 'function'.
 */
export function createImports(
  host: AbiHost,
  imports: ReadonlyArray<{ module: string; field: string; kind?: string }>,
): WebAssembly.Imports {
  const object: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of imports) {
    if (imp.kind !== undefined && imp.kind !== 'func' && imp.kind !== 'function') continue;
    const fn = implementation(resolveImport(imp.module, imp.field)) as (host: AbiHost, ...args: unknown[]) => unknown;
    const ns = Object.hasOwn(object, imp.module) ? object[imp.module] : (object[imp.module] = {});
    ns[imp.field] = (...args: unknown[]) => fn(host, ...args);
  }
  return object;
}
