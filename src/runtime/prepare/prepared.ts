// What module preparation produces: the instrumented binary and the facts
// about the original program that instances need. Plain data, so that it can
// be cached on disk or sent to a worker or a browser.

export interface ImportInfo {
  module: string;
  field: string;
  kind: 'func' | 'table' | 'memory' | 'global';
  params?: string[];
  results?: string[];
}

export interface ProgramInfo {
  /** The program's imports as it declared them. */
  imports: ImportInfo[];
  /** Exported functions that can be entry functions: () -> () or () -> i32. */
  entries: string[];
  /** Memory 0 limits in pages, after the instance limit was applied; maximum null when unbounded. */
  memory: { initial: number; maximum: number | null };
  /** Whether the program had a start section (now exported as START_EXPORT). */
  hasStart: boolean;
  /** Indexes of the mutable globals the program defines (exported for snapshots). */
  mutableGlobals: number[];
  /** The functions of the rewind table, by slot (also how references map back to functions). */
  rewindTable: number[];
  /** The program can change its tables: snapshots carry their contents. */
  dynamicTables: boolean;
  /** Every function and call was made resumable. */
  everything: boolean;
  /** Imported functions (by index) that may take the stack down. */
  blocking: number[];
  /**
   * The worst-case fuel of exported functions (and the start export) that
   * have no checks of their own; the host charges it per call.
   */
  costs: Record<string, number>;
  /** V8 heap its tables may take per instance, at their prepared maxima (limits.ts). */
  tableBytes: number;
}

/**
 * The memory an instance of the program may hold: its linear memory at its
 * maximum (`limitPages` when it has none) plus its tables. What the server
 * counts against memory limits.
 */
export function instanceMemoryBytes(info: ProgramInfo, limitPages: number): number {
  return (info.memory.maximum ?? limitPages) * 65536 + info.tableBytes;
}

export interface PreparedModule {
  /** The instrumented module. */
  bytes: Uint8Array;
  info: ProgramInfo;
  /** Instrumenter version: prepared modules and saved stacks are only valid with the same one. */
  version: string;
}
