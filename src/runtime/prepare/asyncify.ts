// The Binaryen stage of module preparation: make the program's stack
// unwindable at its blocking imports and at the fuel tick (Asyncify), with the
// unwind buffer in a second memory the program cannot see. Binaryen is loaded
// only when a module has to be prepared, since loading it costs ~0.3 s.

import type * as BinaryenModule from 'binaryen';
import { addEmptyMemory, moveDeclarativeSegments, withoutCustomSections } from './binaryen-input.ts';
import { ENGINE_MODULE, FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, NO_UNWIND_EXPORT, START_EXPORT } from './names.ts';

type Binaryen = typeof BinaryenModule.default;

/** The Binaryen release the instrumentation was written and tested with (checked by a test). */
export const BINARYEN_VERSION = '132.0.0';

let binaryenPromise: Promise<Binaryen> | undefined;

export function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= import('binaryen').then((m) => m.default);
  return binaryenPromise;
}

export interface AsyncifyOptions {
  /** "module.field" names of the imports that may unwind (the tick is added). */
  blockingImports: readonly string[];
  /** Size of the Asyncify memory in 64 KiB pages; Binaryen needs it, the engine imports its own. */
  asyncifyPages: number;
  /** Give the module an empty memory 0 first (it has none), so Asyncify's memory is always memory 1. */
  addMemory?: boolean;
  /**
   * Indexes of functions Asyncify must leave alone (they hold references,
   * which it cannot save): the engine never unwinds while one is on the stack.
   */
  noUnwind?: readonly number[];
}

/** Features we read and write; anything else was refused by the parser already. */
function features(b: Binaryen): number {
  const F = b.Features;
  // BulkMemoryOpt must accompany BulkMemory or Binaryen 132 aborts on memory.copy/fill.
  return (
    F.MutableGlobals |
    F.NontrappingFPToInt |
    F.SIMD128 |
    F.BulkMemory |
    F.BulkMemoryOpt |
    F.SignExt |
    F.TailCall |
    F.ReferenceTypes |
    F.Multivalue |
    F.MultiMemory |
    F.CallIndirectOverlong
  );
}

// Function-level optimizations only: module-level passes would drop unused
// imports, globals and memories, which the program is entitled to declare
// (and whose absence would change linking errors).
const OPTIMIZE_PASSES = [
  'dce',
  'remove-unused-names',
  'remove-unused-brs',
  'optimize-instructions',
  'precompute',
  'simplify-locals-nostructure',
  'vacuum',
  'reorder-locals',
  'remove-unused-brs',
  'coalesce-locals',
  'simplify-locals',
  'vacuum',
  'reorder-locals',
  'coalesce-locals',
  'reorder-locals',
  'merge-blocks',
  'remove-unused-brs',
  'remove-unused-names',
  'merge-blocks',
  'optimize-instructions',
  'vacuum',
];

/**
 * Run Asyncify over a fuel-instrumented module and return the new binary.
 * Also moves the start function to an export (V8 runs a start function inside
 * instantiation, where nothing can unwind) and exports every mutable global
 * the program defines, so that snapshots can read and restore them.
 */
export async function asyncify(bytes: Uint8Array, options: AsyncifyOptions): Promise<Uint8Array> {
  const b = await loadBinaryen();
  let input = moveDeclarativeSegments(withoutCustomSections(bytes));
  if (options.addMemory) input = addEmptyMemory(input);
  const m = (b.readBinary as (data: Uint8Array, features?: number) => BinaryenModule.default.Module)(input, features(b));
  try {
    exportInternals(b, m);
    const imports = [...options.blockingImports, `${ENGINE_MODULE}.tick`];
    // Binaryen's pass arguments and optimize levels are process-global state.
    b.setOptimizeLevel(2);
    b.setShrinkLevel(0);
    b.setDebugInfo(false);
    b.setPassArgument('asyncify-imports', imports.join(','));
    b.setPassArgument('asyncify-in-secondary-memory', '1');
    b.setPassArgument('asyncify-secondary-memory-size', String(options.asyncifyPages));
    b.setPassArgument('asyncify-removelist', removeList(b, m, options.noUnwind ?? []));
    try {
      m.runPasses(['asyncify']);
    } finally {
      b.setPassArgument('asyncify-imports', null);
      b.setPassArgument('asyncify-in-secondary-memory', null);
      b.setPassArgument('asyncify-secondary-memory-size', null);
      b.setPassArgument('asyncify-removelist', null);
    }
    m.runPasses(OPTIMIZE_PASSES);
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

/** Asyncify's remove list: function names, comma-separated (names with a comma or wildcard cannot be listed). */
function removeList(b: Binaryen, m: BinaryenModule.default.Module, indexes: readonly number[]): string | null {
  if (indexes.length === 0) return null;
  const names = indexes.map((i) => b.getFunctionInfo(m.getFunctionByIndex(i)).name);
  for (const name of names) {
    if (/[,*]/.test(name)) throw new Error(`function name ${JSON.stringify(name)} cannot be given to Asyncify's remove list`);
  }
  return names.join(',');
}

function exportInternals(b: Binaryen, m: BinaryenModule.default.Module): void {
  const start = m.getStart();
  if (start) {
    m.addFunctionExport(b.getFunctionInfo(start).name, START_EXPORT);
    m.setStart(0);
  }
  const engineGlobals = new Set<string>();
  for (let i = 0; i < m.getNumExports(); i++) {
    const e = b.getExportInfo(m.getExportByIndex(i));
    if (e.kind === b.ExternalGlobal && (e.name === FUEL_EXPORT || e.name === NO_UNWIND_EXPORT)) engineGlobals.add(e.value);
  }
  for (let i = 0; i < m.getNumGlobals(); i++) {
    const g = b.getGlobalInfo(m.getGlobalByIndex(i));
    if (!g.mutable || g.module) continue;
    if (engineGlobals.has(g.name)) continue; // engine state, not the program's
    m.addGlobalExport(g.name, GLOBAL_EXPORT_PREFIX + i);
  }
}
