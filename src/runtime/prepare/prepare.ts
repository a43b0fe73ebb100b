// Module preparation: validate a program, check it against Gate's ABI and the
// instance limits, and rewrite it so that it can be preempted and suspended
// at any of its suspension points, its stack saved as Gate's portable stack
// (docs/engine.md). Done once per module and cached by the host; instances
// only compile and instantiate the result.

import { checkImports, isBlockingImport } from '../abi/imports.ts';
import { parseModule, type ModuleInfo } from '../wasm/module.ts';
import { PrepareError } from './errors.ts';
import { checkModuleLimits, lowerTableMaxima, tableBytes } from './limits.ts';
import { START_EXPORT } from './names.ts';
import type { ImportInfo, PreparedModule, ProgramInfo } from './prepared.ts';
import { moduleSites, rewriteModule } from './rewrite.ts';
import type { SiteInfo } from './function-rewrite.ts';
import { librarySitesOf } from './library-sites.ts';

/**
 * Bumped whenever prepared modules change (it keys the module cache). Version
 * 4 is our own rewrite; earlier ones were Binaryen's Asyncify. Its saved
 * stacks are Gate's portable stacks, defined on the program's own code, so
 * a stack saved under any version 4 resumes under any other.
 */
export const PREPARE_VERSION = 'gate-ts-prepare-4/portable-stack-4';

/** Whether a stack saved under this PREPARE_VERSION is a portable stack (every version of our own rewrite). */
export function savesPortableStacks(version: string): boolean {
  return version.startsWith('gate-ts-prepare-4/portable-stack-');
}

/** Gate's default instance memory limit: 32 MiB. */
export const DEFAULT_MEMORY_PAGES = 512;
const MAX_PAGES = 65536;

export interface PrepareOptions {
  /** Instance memory limit in 64 KiB pages. */
  maxMemoryPages?: number;
  /**
   * Check the imports against Gate's ABI (the default). Off for modules that
   * link to something else, such as the spec suite's host module.
   */
  abi?: boolean;
  /** Make every function and call resumable (to resume a stack Gate saved where we would not stop). */
  everything?: boolean;
}

export { PrepareError };

const valueTypeNames: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };

export async function prepareModule(bytes: Uint8Array, options: PrepareOptions = {}): Promise<PreparedModule> {
  const limit = Math.min(options.maxMemoryPages ?? DEFAULT_MEMORY_PAGES, MAX_PAGES);
  const abi = options.abi ?? true;
  if (!WebAssembly.validate(bytes as BufferSource)) {
    try {
      await WebAssembly.compile(bytes as BufferSource);
    } catch (error) {
      throw new PrepareError('ERR_MODULE_INVALID', `invalid module: ${(error as Error).message.replace(/^WebAssembly\.compile\(\): /, '')}`);
    }
  }
  let info = parseModule(bytes);
  // Tables get the entry limit as their maximum (limits.ts), before anything reads their section.
  const lowered = lowerTableMaxima(bytes, info);
  if (lowered !== bytes) {
    bytes = lowered;
    info = parseModule(bytes);
  }
  const memoryCount = info.memories.length + info.importedMemories;
  if (memoryCount > 1) {
    // Snapshots hold one memory, as Gate's do.
    throw new PrepareError('ERR_MODULE_FEATURE', `module uses multi-memory (${memoryCount} memories), which is not supported: one memory at most`);
  }
  if (info.features.includes('tail-call')) {
    // A tail call leaves no frame to save: Gate's stack format has no place for one.
    throw new PrepareError('ERR_MODULE_FEATURE', 'module uses tail calls, which are not supported (a suspended stack cannot hold them)');
  }
  // Bounds on what the rewrite's work grows with, before it starts (limits.ts).
  checkModuleLimits(bytes, info);
  const imports = importList(info);
  if (abi) {
    checkImports(imports);
    checkSegments(bytes, info);
  }

  const memory = memoryLimits(info, limit);
  return rewrite(bytes, info, imports, memory, abi, options.everything === true);
}

function rewrite(
  bytes: Uint8Array,
  info: ModuleInfo,
  imports: ImportInfo[],
  memory: ReturnType<typeof memoryLimits>,
  abi: boolean,
  everything: boolean,
): PreparedModule {
  const functionImports = imports.filter((i) => i.kind === 'func');
  const blocking = new Set<number>();
  if (abi) functionImports.forEach((imp, k) => isBlockingImport(imp.module, imp.field) && blocking.add(k));
  let rewritten;
  try {
    rewritten = rewriteModule(bytes, info, {
      blockingImports: blocking,
      librarySites: (k) => librarySitesOf(functionImports[k].module, functionImports[k].field),
      memory: memory.imported ? undefined : { initial: memory.initial, maximum: memory.maximum },
      everything,
    });
  } catch (error) {
    throw new PrepareError('ERR_PREPARE_FAILED', `module instrumentation failed: ${(error as Error).message}`);
  }
  const programInfo: ProgramInfo = {
    imports,
    entries: entryFunctions(info),
    memory: { initial: memory.initial, maximum: memory.maximum },
    hasStart: info.start !== undefined,
    mutableGlobals: mutableGlobals(info),
    rewindTable: rewritten.rewindTable,
    dynamicTables: rewritten.graph.scans.some((scan) => scan.tableWrites > 0),
    everything,
    blocking: [...blocking],
    costs: uncheckedCosts(info, rewritten.graph),
    tableBytes: tableBytes(info),
  };
  return { bytes: rewritten.bytes, info: programInfo, version: PREPARE_VERSION };
}


/** Worst-case fuel of exported functions (and the start function) that charge nothing themselves. */
function uncheckedCosts(info: ModuleInfo, graph: { instrumented: Uint8Array; cost: Float64Array }): Record<string, number> {
  const out: Record<string, number> = {};
  const imported = info.importedFunctions;
  const cost = (f: number): number => (f >= imported && !graph.instrumented[f - imported] ? graph.cost[f] : 0);
  for (const e of info.exports) if (e.kind === 'func' && cost(e.index) > 0) out[e.name] = cost(e.index);
  if (info.start !== undefined && cost(info.start) > 0) out[START_EXPORT] = cost(info.start);
  return out;
}

function importList(info: ModuleInfo): ImportInfo[] {
  return info.imports.map((imp) => {
    const out: ImportInfo = { module: imp.module, field: imp.field, kind: imp.kind };
    if (imp.kind === 'func') {
      const type = info.types[imp.typeIndex!];
      out.params = type.params.map(typeName);
      out.results = type.results.map(typeName);
    }
    return out;
  });
}

function typeName(t: number | string): string {
  return typeof t === 'string' ? t : (valueTypeNames[t] ?? `0x${t.toString(16)}`);
}

function memoryLimits(
  info: ModuleInfo,
  limit: number,
): { initial: number; maximum: number | null; imported: boolean; added: boolean } {
  const importedMemory = info.imports.find((i) => i.kind === 'memory');
  if (importedMemory) {
    return { initial: 0, maximum: null, imported: true, added: false };
  }
  const mem = info.memories[0];
  if (!mem) return { initial: 0, maximum: 0, imported: false, added: true };
  if (mem.initial > limit) {
    throw new PrepareError(
      'ERR_MEMORY_LIMIT',
      `initial program memory size exceeds instance memory size limit (${mem.initial} pages > ${limit} pages)`,
    );
  }
  // A program without a maximum keeps none when the limit is wasm32's own:
  // declaring one would change which memory imports it can satisfy.
  if (mem.maximum === undefined && limit >= MAX_PAGES) return { initial: mem.initial, maximum: null, imported: false, added: false };
  const maximum = Math.min(mem.maximum ?? limit, limit);
  return { initial: mem.initial, maximum, imported: false, added: false };
}

function entryFunctions(info: ModuleInfo): string[] {
  const out: string[] = [];
  for (const e of info.exports) {
    if (e.kind !== 'func') continue;
    const type = info.types[info.functionType(e.index)];
    if (type.params.length === 0 && (type.results.length === 0 || (type.results.length === 1 && typeName(type.results[0]) === 'i32'))) {
      out.push(e.name);
    }
  }
  return out;
}

function mutableGlobals(info: ModuleInfo): number[] {
  const out: number[] = [];
  info.globals.forEach((g, i) => {
    if (g.mutable) out.push(info.importedGlobals + i);
  });
  return out;
}

/** The value of a constant offset expression `i32.const N end`, or undefined for anything else. */
function constOffset(bytes: Uint8Array, start: number, end: number): number | undefined {
  if (bytes[start] !== 0x41 || bytes[end - 1] !== 0x0b) return undefined;
  let result = 0;
  let shift = 0;
  let i = start + 1;
  let b: number;
  do {
    b = bytes[i++];
    result |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80 && shift < 35);
  if (i !== end - 1) return undefined;
  // i32.const is signed LEB128: extend the sign, then read the bits unsigned as offsets are.
  if (shift < 32 && b & 0x40) result |= -1 << shift;
  return result >>> 0;
}

/**
 * Gate refuses, at load time, segments that do not fit the initial memory or
 * table (instantiation would fail anyway; an early, named error is clearer).
 */
function checkSegments(bytes: Uint8Array, info: ModuleInfo): void {
  const memoryBytes = (info.memories[0]?.initial ?? 0) * 65536;
  info.data.forEach((seg, i) => {
    if (seg.mode !== 'active' || !seg.offset) return;
    const offset = constOffset(bytes, seg.offset.start, seg.offset.end);
    if (offset !== undefined && offset + (seg.data.end - seg.data.start) > memoryBytes) {
      throw new PrepareError('ERR_MODULE_SEGMENT', `memory segment #${i} exceeds initial memory size`);
    }
  });
  const tableSize = info.tables[0]?.initial ?? 0;
  info.elements.forEach((seg, i) => {
    if (seg.mode !== 'active' || !seg.offset) return;
    const offset = constOffset(bytes, seg.offset.start, seg.offset.end);
    if (offset !== undefined && offset + seg.count > tableSize) {
      throw new PrepareError('ERR_MODULE_SEGMENT', `table segment #${i} exceeds initial table size`);
    }
  });
}

/** The call sites of a program prepared by the portable rewrite, numbered as its frames name them. */
export interface ProgramSites {
  /** Gate call-site index of each function's first site (imports first), and the total at the end. */
  siteBase: Int32Array;
  /** Index of each defined function's first site Gate does not have (after all of Gate's). */
  extraBase: Int32Array;
  /** Sites of each defined function by key; undefined for functions that cannot be suspended. */
  sites: (SiteInfo[] | undefined)[];
  /** Canonical type index (the first structurally equal one) of every function (imports first). */
  functionTypes: number[];
  /** Canonical type index of every type index. */
  canonicalTypes: number[];
  /** Parameter and result types of every type index. */
  types: { params: string[]; results: string[] }[];
  /** Non-parameter local types of every defined function. */
  locals: (readonly number[])[];
  importedFunctions: number;
  /** Functions a table can hold. */
  referenceable: ReadonlySet<number>;
  /** Exported functions by name. */
  exports: ReadonlyMap<string, number>;
  start: number | undefined;
}

/** Work out a prepared program's sites again from the program (as preparation did). */
export function programSites(program: Uint8Array, info: ProgramInfo): ProgramSites {
  const module = parseModule(program);
  const functionImports = info.imports.filter((i) => i.kind === 'func');
  const { graph, sites, locals } = moduleSites(program, module, {
    blockingImports: new Set(info.blocking ?? []),
    librarySites: (k) => librarySitesOf(functionImports[k].module, functionImports[k].field),
    everything: info.everything === true,
  });
  const imported = module.importedFunctions;
  const extraBase = new Int32Array(module.code.length + 1);
  let next = graph.siteCount;
  for (let i = 0; i < module.code.length; i++) {
    extraBase[i] = next;
    next += sites[i]?.filter((s) => s.extra >= 0).length ?? 0;
  }
  extraBase[module.code.length] = next;
  const functionTypes: number[] = [];
  for (let f = 0; f < imported + module.code.length; f++) functionTypes.push(graph.canonical[module.functionType(f)]);
  return {
    siteBase: graph.siteBase,
    extraBase,
    sites,
    functionTypes,
    canonicalTypes: graph.canonical,
    types: module.types.map((t) => ({ params: [...t.params], results: [...t.results] })),
    locals,
    importedFunctions: imported,
    referenceable: new Set(graph.referenceable),
    exports: new Map(module.exports.filter((e) => e.kind === 'func').map((e) => [e.name, e.index])),
    start: module.start,
  };
}
