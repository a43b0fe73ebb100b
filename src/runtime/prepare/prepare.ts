// Module preparation: validate a program, check it against Gate's ABI and the
// instance limits, and rewrite it so that it can be preempted and suspended
// anywhere (fuel checks, then Asyncify). Done once per module and cached by
// the host; instances only compile and instantiate the result.

import { checkImports } from '../abi/imports.ts';
import { isBlockingImport } from '../abi/imports.ts';
import { parseModule, type ModuleInfo } from '../wasm/module.ts';
import { addFuel } from './fuel.ts';
import { referenceHolders } from './reference-holders.ts';
import { asyncify, BINARYEN_VERSION } from './asyncify.ts';
import { PrepareError } from './errors.ts';
import { checkModuleLimits, lowerTableMaxima, tableBytes } from './limits.ts';
import { importMemories, type MemoryImport } from './memory-import.ts';
import { ASYNCIFY_MEMORY_IMPORT, MEMORY_IMPORT } from './names.ts';
import type { ImportInfo, PreparedModule, ProgramInfo } from './prepared.ts';

/** Bumped whenever prepared modules or saved stacks change meaning. */
export const PREPARE_VERSION = `gate-ts-prepare-3/binaryen-${BINARYEN_VERSION}`;

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
  const info = parseModule(bytes);
  const memoryCount = info.memories.length + info.importedMemories;
  if (memoryCount > 1) {
    // Asyncify's buffer is the engine's second memory; programs get one.
    throw new PrepareError('ERR_MODULE_FEATURE', `module uses multi-memory (${memoryCount} memories), which is not supported: one memory at most`);
  }
  if (info.features.includes('tail-call')) {
    // Binaryen 132's Asyncify aborts on return_call (found by fuzzing the loader).
    throw new PrepareError('ERR_MODULE_FEATURE', 'module uses tail calls, which are not supported (Asyncify cannot instrument them)');
  }
  checkModuleLimits(bytes, info);
  const imports = importList(info);
  if (abi) {
    checkImports(imports);
    checkSegments(bytes, info);
  }

  const memory = memoryLimits(info, limit);
  const fueled = addFuel(bytes, info);
  // The wrapped functions keep their indexes (after the tick import); their bodies follow all others.
  const holders = referenceHolders(bytes, info);
  const base = info.importedFunctions + 1;
  const noUnwind = [...holders.map((i) => base + i), ...holders.map((_, k) => base + info.code.length + k)];
  const blocking = abi
    ? imports.filter((i) => i.kind === 'func' && isBlockingImport(i.module, i.field)).map((i) => `${i.module}.${i.field}`)
    : [];
  let asyncified: Uint8Array;
  try {
    asyncified = await asyncify(fueled, { blockingImports: blocking, asyncifyPages: 1, addMemory: memory.added, noUnwind });
  } catch (error) {
    throw instrumentationError(error);
  }
  const memories: MemoryImport[] = [];
  if (!memory.imported) {
    memories.push({ field: MEMORY_IMPORT, minimum: memory.initial, maximum: memory.maximum ?? undefined });
  }
  memories.push({ field: ASYNCIFY_MEMORY_IMPORT, minimum: 1 });
  const final = lowerTableMaxima(importMemories(asyncified, memories));

  const programInfo: ProgramInfo = {
    imports,
    entries: entryFunctions(info),
    memory: { initial: memory.initial, maximum: memory.maximum },
    hasStart: info.start !== undefined,
    mutableGlobals: mutableGlobals(info),
    tableBytes: tableBytes(info),
  };
  return { bytes: final, info: programInfo, version: PREPARE_VERSION };
}

/** Binaryen refuses a module by aborting with an opaque error: say at least that it was the instrumentation. */
function instrumentationError(error: unknown): PrepareError {
  const message = error instanceof Error ? error.message : (error as { message?: string } | null)?.message;
  return new PrepareError('ERR_PREPARE_FAILED', `module instrumentation failed: ${message || 'Binaryen aborted'}`);
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
  return result >>> 0; // offsets are unsigned
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
