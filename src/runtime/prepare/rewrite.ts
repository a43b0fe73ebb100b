// The module part of the rewrite (docs/engine.md): add the engine's imports
// (the tick, the stack functions, the unwind tag, the program's memory), the
// fuel global and the exports a snapshot needs; rewrite every function that
// can be suspended (function-rewrite.ts); renumber function indices
// everywhere else. Sections the rewrite does not change are copied.

import { ModuleFormatError, Reader, u32Length, Writer } from '../wasm/binary.ts';
import { parseModule, SectionId, SECTION_ORDER, type ModuleInfo, type SectionInfo } from '../wasm/module.ts';
import { buildCallGraph, type CallGraph } from './call-graph.ts';
import { FunctionRewriter, type EngineIndexes, type RewriteContext, type SiteInfo } from './function-rewrite.ts';
import { copyElementSegments, copyGlobals, copyNameSection } from './module-remap.ts';
import {
  BEGIN_IMPORT,
  CALLEE_IMPORT,
  DROP_DATA_PREFIX,
  DROP_ELEM_PREFIX,
  DROPPED_DATA_PREFIX,
  DROPPED_ELEM_PREFIX,
  FUNCTIONS_EXPORT,
  TABLE_EXPORT_PREFIX,
  ENGINE_MODULE,
  FRAME_IMPORT,
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  LOAD_PREFIX,
  MARK_IMPORT,
  MEMORY_IMPORT,
  RESERVED_PREFIX,
  SAVE_PREFIX,
  START_EXPORT,
  TICK_IMPORT,
  UNWIND_TAG_IMPORT,
} from './names.ts';
import { EXTERNREF, F32, F64, FUNCREF, I32, I64, V128, typeCode } from './operand-types.ts';
import { TypeTable } from './type-table.ts';

const KIND_FUNC = 0;
const KIND_TABLE = 1;
const KIND_MEMORY = 2;
const KIND_GLOBAL = 3;
const KIND_TAG = 4;

/** Value types with save and load functions, and their names. */
export const SAVED_TYPES: readonly [number, string][] = [
  [I32, 'i32'],
  [I64, 'i64'],
  [F32, 'f32'],
  [F64, 'f64'],
  [V128, 'v128'],
  [FUNCREF, 'funcref'],
  [EXTERNREF, 'externref'],
];

export interface RewriteOptions {
  /** Imported functions that may block or stop the program (they can unwind). */
  blockingImports: ReadonlySet<number>;
  /** Library body call sites of each imported function (Gate's numbering). */
  librarySites: (importIndex: number) => number;
  /** The program's memory becomes this import; undefined when the program imports its memory itself. */
  memory?: { initial: number; maximum: number | null };
  /** Make every function and call resumable (to resume a stack saved elsewhere). */
  everything?: boolean;
}

export interface Rewritten {
  bytes: Uint8Array<ArrayBuffer>;
  /** Functions in the rewind table, by slot (function indices of the program). */
  rewindTable: number[];
  graph: CallGraph;
}

/** Rewrite a validated module (info = parseModule(bytes)). */
export function rewriteModule(bytes: Uint8Array, info: ModuleInfo, options: RewriteOptions): Rewritten {
  for (const imp of info.imports) {
    if (imp.module === ENGINE_MODULE) {
      throw new ModuleFormatError(`import module name "${ENGINE_MODULE}" is reserved (import "${imp.module}" "${imp.field}")`);
    }
  }
  for (const exp of info.exports) {
    if (exp.name.startsWith(RESERVED_PREFIX)) {
      throw new ModuleFormatError(`export name "${exp.name}" is reserved (prefix "${RESERVED_PREFIX}")`);
    }
  }
  return new ModuleRewriter(bytes, info, options).run();
}

/** The suspendable sites of every instrumented function (for reading and writing stacks). */
export function moduleSites(
  bytes: Uint8Array,
  info: ModuleInfo,
  options: RewriteOptions,
): { graph: CallGraph; sites: (SiteInfo[] | undefined)[]; locals: (readonly number[])[] } {
  const rewriter = new ModuleRewriter(bytes, info, options);
  const sites: (SiteInfo[] | undefined)[] = [];
  const locals: (readonly number[])[] = [];
  info.code.forEach((_, i) => {
    const plan = rewriter.graph.instrumented[i] ? rewriter.functions.planOf(i) : undefined;
    sites.push(plan?.sites);
    locals.push(plan ? plan.localTypes.slice(plan.params) : []);
  });
  return { graph: rewriter.graph, sites, locals };
}

class ModuleRewriter {
  readonly bytes: Uint8Array;
  readonly info: ModuleInfo;
  readonly options: RewriteOptions;
  readonly graph: CallGraph;
  readonly types: TypeTable;
  readonly engine: EngineIndexes;
  readonly functions: FunctionRewriter;
  readonly code: Writer;
  /** Engine functions imported (they shift defined functions). */
  readonly added: number;
  readonly importTypes: number[] = [];
  readonly importNames: string[] = [];
  readonly tagType: number;
  readonly rewindTable: number[];
  readonly needsRewindTable: boolean;
  /** Passive segments the program drops, each with its flag global (in this order after the fuel global). */
  readonly dropped: { kind: 'data' | 'elem'; segment: number; global: number }[] = [];
  fillers = 0;

  constructor(bytes: Uint8Array, info: ModuleInfo, options: RewriteOptions) {
    this.bytes = bytes;
    this.info = info;
    this.options = options;
    this.types = new TypeTable(info);
    this.graph = buildCallGraph(bytes, info, options.librarySites, {
      blockingImports: options.blockingImports,
      everything: options.everything,
    });
    const types = this.types;
    const base = info.importedFunctions;
    const add = (name: string, params: number[], results: number[]): number => {
      this.importNames.push(name);
      this.importTypes.push(types.intern(params, results));
      return base + this.importNames.length - 1;
    };
    const save: Record<number, number> = {};
    const load: Record<number, number> = {};
    const tick = add(TICK_IMPORT, [I32], [I32]);
    const frame = add(FRAME_IMPORT, [I32, I32], []);
    const mark = add(MARK_IMPORT, [], []);
    const begin = add(BEGIN_IMPORT, [], [I32]);
    const callee = add(CALLEE_IMPORT, [], [I32]);
    for (const [t, name] of SAVED_TYPES) save[t] = add(SAVE_PREFIX + name, [t], []);
    for (const [t, name] of SAVED_TYPES) load[t] = add(LOAD_PREFIX + name, [], [t]);
    this.added = this.importNames.length;
    this.tagType = types.intern([], []);
    this.rewindTable = this.graph.referenceable;
    // Also how a snapshot maps references back to functions: there whenever a reference can exist.
    this.needsRewindTable =
      this.rewindTable.length > 0 || this.graph.scans.some((s, i) => s.indirectTypes.length > 0 && this.graph.instrumented[i] === 1);
    this.engine = {
      tick,
      frame,
      mark,
      begin,
      callee,
      save,
      load,
      tag: 0, // the only tag: programs that declare tags are refused
      fuel: info.importedGlobals + info.globals.length,
      rewindTable: this.needsRewindTable ? info.importedTables + info.tables.length : -1,
    };
    const globalTypes: number[] = [];
    const tableTypes: number[] = [];
    for (const imp of info.imports) {
      if (imp.kind === 'global') globalTypes.push(typeCode(imp.global.type));
      if (imp.kind === 'table') tableTypes.push(typeCode(imp.table.element));
    }
    for (const g of info.globals) globalTypes.push(typeCode(g.type));
    for (const t of info.tables) tableTypes.push(typeCode(t.element));
    const fuelGlobal = info.importedGlobals + info.globals.length;
    const flagOf = new Map<string, number>();
    const addDropped = (kind: 'data' | 'elem', segment: number): void => {
      const key = `${kind}${segment}`;
      const passive = kind === 'data' ? info.data[segment]?.mode === 'passive' : info.elements[segment]?.mode === 'passive';
      if (!passive || flagOf.has(key)) return;
      const global = fuelGlobal + 1 + this.dropped.length;
      flagOf.set(key, global);
      this.dropped.push({ kind, segment, global });
    };
    for (const scan of this.graph.scans) {
      for (const d of scan.dataDrops) addDropped('data', d);
      for (const e of scan.elemDrops) addDropped('elem', e);
    }
    const ctx: RewriteContext = {
      bytes,
      info,
      graph: this.graph,
      types,
      globalTypes,
      tableTypes,
      engine: this.engine,
      remap: (f) => this.remap(f),
      everything: options.everything === true,
      droppedFlag: (kind, segment) => flagOf.get(`${kind}${segment}`) ?? -1,
    };
    this.code = new Writer(bytes.length + (bytes.length >> 1) + 1024);
    this.functions = new FunctionRewriter(ctx, this.code);
  }

  remap(f: number): number {
    return f < this.info.importedFunctions ? f : f + this.added;
  }

  run(): Rewritten {
    const { info, code } = this;
    // The code first: it adds the block types the type section must declare.
    let small = 0;
    for (let i = 0; i < info.code.length; i++) {
      const at = code.len;
      this.functions.write(i);
      if (code.len - at - u32Length(code.len - at) < SMALL_BODY) small++;
    }
    this.fillers = fillerCount(info, small);

    const out = new Writer(code.len + this.bytes.length / 4 + 1024);
    out.bytes(this.bytes, 0, 8);
    const sections = info.sections;
    const present = new Set(sections.map((s) => s.id));
    // Sections the output needs though the input may lack them.
    const wanted: number[] = [SectionId.Type, SectionId.Import, SectionId.Global, SectionId.Export, SectionId.Code];
    if (this.needsRewindTable) wanted.push(SectionId.Table, SectionId.Element);
    const missing = wanted.filter((id) => !present.has(id));
    let pending = [...missing].sort((a, b) => SECTION_ORDER[a] - SECTION_ORDER[b]);
    const flushBefore = (id: number): void => {
      while (pending.length > 0 && SECTION_ORDER[pending[0]] < SECTION_ORDER[id]) {
        this.section(out, pending.shift()!, undefined, -1);
      }
    };
    sections.forEach((s, index) => {
      if (s.id !== SectionId.Custom) flushBefore(s.id);
      this.section(out, s.id, s, index);
    });
    for (const id of pending) this.section(out, id, undefined, -1);
    pending = [];
    return { bytes: out.finish(), rewindTable: this.rewindTable, graph: this.graph };
  }

  private section(out: Writer, id: number, s: SectionInfo | undefined, index: number): void {
    const { bytes, info } = this;
    if (s && id === SectionId.Custom) {
      const custom = info.customs.find((c) => c.section === index);
      if (custom?.name === 'name') copyNameSection(out, bytes, s, custom.payload.start, (f) => this.remap(f));
      else out.bytes(bytes, s.start, s.end);
      return;
    }
    const r = s ? new Reader(bytes, s.payloadStart, s.end, 'section') : undefined;
    const begin = (): number => {
      out.u8(id);
      return out.beginSize();
    };
    switch (id) {
      case SectionId.Type: {
        const m = begin();
        out.u32(this.types.types.length);
        if (r) {
          r.u32();
          out.bytes(bytes, r.pos, r.end);
        }
        this.types.writeAdded(out);
        out.endSize(m);
        return;
      }
      case SectionId.Import:
        return this.importSection(out, begin(), r);
      case SectionId.Table: {
        if (!this.needsRewindTable) break;
        const m = begin();
        out.u32(info.tables.length + 1);
        if (r) {
          r.u32();
          out.bytes(bytes, r.pos, r.end);
        }
        out.u8(FUNCREF);
        out.u8(1); // with a maximum
        out.u32(this.rewindTable.length);
        out.u32(this.rewindTable.length);
        out.endSize(m);
        return;
      }
      case SectionId.Memory:
        if (this.options.memory) return; // it became an import
        break;
      case SectionId.Global: {
        const m = begin();
        out.u32(info.globals.length + 1 + this.dropped.length);
        copyGlobals(out, bytes, info, (f) => this.remap(f));
        // The fuel, then the drop flags: mutable i32s starting at 0.
        for (let k = 0; k <= this.dropped.length; k++) {
          out.u8(I32);
          out.u8(1);
          out.u8(0x41);
          out.u8(0);
          out.u8(0x0b);
        }
        out.endSize(m);
        return;
      }
      case SectionId.Export:
        return this.exportSection(out, begin(), r);
      case SectionId.Start:
        return; // exported instead: instantiation must not run program code
      case SectionId.Element: {
        const m = begin();
        out.u32(info.elements.length + (this.needsRewindTable ? 1 : 0));
        copyElementSegments(out, bytes, info, (f) => this.remap(f));
        if (this.needsRewindTable) {
          out.u8(2); // active, explicit table, function indices
          out.u32(this.engine.rewindTable);
          out.u8(0x41);
          out.u8(0);
          out.u8(0x0b);
          out.u8(0); // funcref
          out.u32(this.rewindTable.length);
          for (const f of this.rewindTable) out.u32(this.remap(f));
        }
        out.endSize(m);
        return;
      }
      case SectionId.Function: {
        const m = begin();
        out.u32(info.code.length + this.dropped.length + this.fillers);
        if (r) {
          r.u32();
          out.bytes(bytes, r.pos, r.end);
        }
        for (let k = 0; k < this.dropped.length + this.fillers; k++) out.u32(this.tagType);
        out.endSize(m);
        return;
      }
      case SectionId.Code: {
        const m = begin();
        out.u32(info.code.length + this.dropped.length + this.fillers);
        out.bytes(this.code.buf, 0, this.code.len);
        for (const d of this.dropped) {
          const body = out.beginSize();
          out.u8(0); // no locals
          out.u8(0xfc);
          out.u32(d.kind === 'data' ? 9 : 13); // data.drop, elem.drop
          out.u32(d.segment);
          out.u8(0x41);
          out.u8(1);
          out.u8(0x24); // global.set
          out.u32(d.global);
          out.u8(0x0b);
          out.endSize(body);
        }
        for (let k = 0; k < this.fillers; k++) {
          out.u8(2);
          out.u8(0);
          out.u8(0x0b);
        }
        out.endSize(m);
        return;
      }
    }
    if (s) out.bytes(bytes, s.start, s.end);
  }

  private importSection(out: Writer, m: number, r: Reader | undefined): void {
    const { bytes, info } = this;
    const memory = this.options.memory;
    out.u32(info.imports.length + this.added + 1 + (memory ? 1 : 0));
    if (r) {
      r.u32();
      out.bytes(bytes, r.pos, r.end);
    }
    for (let k = 0; k < this.added; k++) {
      out.name(ENGINE_MODULE);
      out.name(this.importNames[k]);
      out.u8(KIND_FUNC);
      out.u32(this.importTypes[k]);
    }
    out.name(ENGINE_MODULE);
    out.name(UNWIND_TAG_IMPORT);
    out.u8(KIND_TAG);
    out.u8(0); // exception attribute
    out.u32(this.tagType);
    if (memory) {
      out.name(ENGINE_MODULE);
      out.name(MEMORY_IMPORT);
      out.u8(KIND_MEMORY);
      out.u8(memory.maximum === null ? 0 : 1);
      out.u32(memory.initial);
      if (memory.maximum !== null) out.u32(memory.maximum);
    }
    out.endSize(m);
  }

  private exportSection(out: Writer, m: number, r: Reader | undefined): void {
    const { bytes, info } = this;
    const globals = info.globals.map((g, i) => (g.mutable ? info.importedGlobals + i : -1)).filter((g) => g >= 0);
    const start = info.start;
    const tables = info.tables.length;
    const functions = this.needsRewindTable ? 1 : 0;
    out.u32(info.exports.length + 1 + globals.length + (start !== undefined ? 1 : 0) + tables + functions + 2 * this.dropped.length);
    if (r) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const nameStart = r.pos;
        r.byteVector();
        out.bytes(bytes, nameStart, r.pos);
        const kind = r.u8();
        const index = r.u32();
        out.u8(kind);
        out.u32(kind === KIND_FUNC ? this.remap(index) : index);
      }
    }
    out.name(FUEL_EXPORT);
    out.u8(KIND_GLOBAL);
    out.u32(this.engine.fuel);
    for (const g of globals) {
      out.name(GLOBAL_EXPORT_PREFIX + g);
      out.u8(KIND_GLOBAL);
      out.u32(g);
    }
    if (start !== undefined) {
      out.name(START_EXPORT);
      out.u8(KIND_FUNC);
      out.u32(this.remap(start));
    }
    for (let t = 0; t < tables; t++) {
      out.name(TABLE_EXPORT_PREFIX + (info.importedTables + t));
      out.u8(KIND_TABLE);
      out.u32(info.importedTables + t);
    }
    if (functions) {
      out.name(FUNCTIONS_EXPORT);
      out.u8(KIND_TABLE);
      out.u32(this.engine.rewindTable);
    }
    const dropBase = info.importedFunctions + this.added + info.code.length;
    this.dropped.forEach((d, k) => {
      out.name((d.kind === 'data' ? DROPPED_DATA_PREFIX : DROPPED_ELEM_PREFIX) + d.segment);
      out.u8(KIND_GLOBAL);
      out.u32(d.global);
      out.name((d.kind === 'data' ? DROP_DATA_PREFIX : DROP_ELEM_PREFIX) + d.segment);
      out.u8(KIND_FUNC);
      out.u32(dropBase + k);
    });
    out.endSize(m);
  }
}

// V8 sizes its inlining budget by the share of a module's function bodies
// under 50 bytes: a module with few small functions counts as already inlined
// by its toolchain and gets a budget cut to 2/5 (docs/engine.md). The rewrite
// makes small functions that can suspend bigger than that, which would cut
// the program's budget for no reason of its own; empty functions that nothing
// calls restore the share the program had.
const SMALL_BODY = 50;
const SHARE_LOW = 0.25;
const SHARE_HIGH = 0.5;

function fillerCount(info: ModuleInfo, smallAfter: number): number {
  const n = info.code.length;
  if (n === 0) return 0;
  let small = 0;
  for (const body of info.code) if (body.range.end - body.range.start < SMALL_BODY) small++;
  const share = Math.min(small / n, SHARE_HIGH);
  if (share <= SHARE_LOW || smallAfter / n >= share) return 0;
  // (smallAfter + k) / (n + k) >= share
  return Math.ceil((share * n - smallAfter) / (1 - share));
}

/** Parse and rewrite (for tests). */
export function rewriteBytes(bytes: Uint8Array, options: RewriteOptions): Rewritten {
  return rewriteModule(bytes, parseModule(bytes), options);
}
