// Section-level parser: turns a module binary into a ModuleInfo that records
// what the module declares and where each part lies in the input, so that
// rewriting passes can copy untouched bytes through. Every code body is
// decoded too (feature detection, structure checks, statistics).

import { Reader, ModuleFormatError, UnsupportedFeatureError, hex } from './binary.ts';
import {
  Feature,
  featureNames,
  readRefType,
  readValType,
  valTypeFeatures,
  valTypeName,
  type FeatureName,
  type RefType,
  type ValType,
} from './features.ts';
import { CodeReader, scanBody, scanConstExpr, type BodyStats } from './instructions.ts';

export const SectionId = {
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
  DataCount: 12,
  Tag: 13,
} as const;

/** Position of each known section id in the required order (custom sections go anywhere). */
export const SECTION_ORDER: readonly number[] = [
  0, // custom
  1, // type
  2, // import
  3, // function
  4, // table
  5, // memory
  8, // global
  9, // export
  10, // start
  11, // element
  13, // code
  14, // data
  12, // data count
  7, // tag (after memory, before global)
];

/** Byte range [start, end) in the module. */
export interface Range {
  start: number;
  end: number;
}

export interface SectionInfo {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  /** Offset of the payload (after the size). */
  payloadStart: number;
  /** End of the payload. */
  end: number;
}

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

export interface Limits {
  initial: number;
  maximum?: number;
}

export interface TableType extends Limits {
  element: RefType;
}

export interface MemoryType extends Limits {
  /** Always false after a successful parse: shared memories are refused. */
  shared: boolean;
  /** Always false after a successful parse: memory64 is refused. */
  memory64: boolean;
}

export interface GlobalType {
  type: ValType;
  mutable: boolean;
}

export type ExternKind = 'func' | 'table' | 'memory' | 'global';

interface ImportBase {
  module: string;
  field: string;
}
export type Import =
  | (ImportBase & { kind: 'func'; typeIndex: number })
  | (ImportBase & { kind: 'table'; table: TableType })
  | (ImportBase & { kind: 'memory'; memory: MemoryType })
  | (ImportBase & { kind: 'global'; global: GlobalType });

export interface Global extends GlobalType {
  /** Initializer expression, including its final `end` byte. */
  init: Range;
  /** The whole entry: type, mutability, initializer. */
  range: Range;
  /** Number of ref.func instructions in the initializer. */
  funcRefs: number;
}

export interface Export {
  name: string;
  kind: ExternKind;
  index: number;
}

export interface ElementSegment {
  /** The segment's flags field (0-7), which selects its encoding. */
  flags: number;
  mode: 'active' | 'passive' | 'declarative';
  /** Table of an active segment (0 otherwise). */
  table: number;
  /** Offset expression of an active segment, including its `end`. */
  offset?: Range;
  type: RefType;
  /** Function index vector, or vector of constant expressions. */
  encoding: 'indices' | 'expressions';
  count: number;
  /** The items after the vector length. */
  items: Range;
  range: Range;
}

export interface DataSegment {
  flags: number;
  mode: 'active' | 'passive';
  memory: number;
  /** Offset expression of an active segment, including its `end`. */
  offset?: Range;
  /** The data bytes. */
  data: Range;
  range: Range;
}

export interface CodeBody extends BodyStats {
  /** The body after its size prefix: locals declaration and instructions. */
  range: Range;
  /** Locals declaration (its count and entries). */
  locals: Range;
  /** Offset of the first instruction (= locals.end). */
  instructions: number;
}

export interface CustomSection {
  name: string;
  /** Content after the name. */
  payload: Range;
  /** Index of this section in ModuleInfo.sections. */
  section: number;
  /** Id of the last non-custom section before it; 0 if none. */
  after: number;
}

/**
 * What a module declares and where. Plain data apart from a few helpers, so it
 * survives structured cloning (as a plain object).
 */
export class ModuleInfo {
  /** All sections, in file order. */
  sections: SectionInfo[] = [];
  types: FuncType[] = [];
  imports: Import[] = [];
  /** Type index of each defined function. */
  functions: number[] = [];
  tables: TableType[] = [];
  memories: MemoryType[] = [];
  globals: Global[] = [];
  exports: Export[] = [];
  start?: number;
  elements: ElementSegment[] = [];
  dataCount?: number;
  /** One per defined function. */
  code: CodeBody[] = [];
  data: DataSegment[] = [];
  customs: CustomSection[] = [];
  importedFunctions = 0;
  importedTables = 0;
  importedMemories = 0;
  importedGlobals = 0;
  /** Feature families used beyond the MVP. */
  features: FeatureName[] = [];
  featureMask = 0;

  /** Type index of a function in the function index space (imports first). */
  functionType(index: number): number {
    if (index < this.importedFunctions) {
      let n = 0;
      for (const imp of this.imports) {
        if (imp.kind === 'func' && n++ === index) return imp.typeIndex;
      }
    } else if (index - this.importedFunctions < this.functions.length) {
      return this.functions[index - this.importedFunctions];
    }
    throw new ModuleFormatError(`function index ${index} out of range`);
  }

  /** Signature of a function in the function index space. */
  functionSignature(index: number): FuncType {
    const type = this.types[this.functionType(index)];
    if (!type) throw new ModuleFormatError(`type index ${this.functionType(index)} out of range`);
    return type;
  }
}

const KIND_NAMES: readonly ExternKind[] = ['func', 'table', 'memory', 'global'];

function refuseExternKind(kind: number, at: number, what: string): never {
  if (kind === 4) throw new UnsupportedFeatureError('exception-handling', `tag ${what}`, at);
  throw new ModuleFormatError(`invalid ${what} kind ${kind}`, at);
}

class Parser {
  readonly bytes: Uint8Array;
  readonly code: CodeReader;
  features = 0;
  readonly info: ModuleInfo;
  /** Types of all globals, imported first, for the mutable-globals check of exports. */
  readonly globalMutability: boolean[] = [];

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.code = new CodeReader(bytes);
    this.info = new ModuleInfo();
  }

  parse(): ModuleInfo {
    const bytes = this.bytes;
    const info = this.info;
    const top = new Reader(bytes, 0, bytes.length, 'module');
    if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new ModuleFormatError('magic header not detected: not a WebAssembly module', 0);
    }
    if (bytes.length < 8) top.eof(bytes.length);
    const version = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
    if (version !== 1) {
      // Components use layer 1 with version 0x0d (and newer drafts).
      if (bytes[6] === 1 && bytes[7] === 0) throw new UnsupportedFeatureError('component-model', 'component binary', 4);
      throw new ModuleFormatError(`unknown binary version ${hex(version >>> 0)}`, 4);
    }
    top.pos = 8;

    let lastOrder = 0;
    let lastId = 0;
    while (!top.atEnd()) {
      const start = top.pos;
      const id = top.u8();
      const sizeAt = top.pos;
      const size = top.u32();
      if (size > top.remaining()) {
        throw new ModuleFormatError(`section size ${size} exceeds the remaining ${top.remaining()} bytes of the module`, sizeAt);
      }
      const payloadStart = top.pos;
      const end = payloadStart + size;
      top.pos = end;
      if (id === SectionId.Tag) throw new UnsupportedFeatureError('exception-handling', 'tag section', start);
      if (id > SectionId.Tag) throw new ModuleFormatError(`invalid section id ${id}`, start);
      if (id !== SectionId.Custom) {
        const order = SECTION_ORDER[id];
        if (order <= lastOrder) throw new ModuleFormatError(`unexpected section id ${id}: duplicate or out of order`, start);
        lastOrder = order;
      }
      const index = info.sections.length;
      info.sections.push({ id, start, payloadStart, end });
      const r = new Reader(bytes, payloadStart, end, 'section');
      this.section(id, r, index, lastId);
      if (r.pos !== end) throw new ModuleFormatError(`section size mismatch: section id ${id} has ${end - r.pos} unread bytes`, r.pos);
      if (id !== SectionId.Custom) lastId = id;
    }

    if (info.functions.length !== info.code.length) {
      throw new ModuleFormatError(`function and code section have inconsistent lengths (${info.functions.length} and ${info.code.length})`);
    }
    if (info.dataCount !== undefined && info.dataCount !== info.data.length) {
      throw new ModuleFormatError(`data count and data section have inconsistent lengths (${info.dataCount} and ${info.data.length})`);
    }
    if (this.code.usesDataCount && info.dataCount === undefined) {
      throw new ModuleFormatError('data count section required: memory.init or data.drop is used without one');
    }
    if (info.tables.length + info.importedTables > 1) this.features |= Feature.ReferenceTypes;
    if (info.memories.length + info.importedMemories > 1) this.features |= Feature.MultiMemory;
    const mask = this.features | this.code.features;
    info.featureMask = mask;
    info.features = featureNames(mask);
    return info;
  }

  private section(id: number, r: Reader, index: number, lastId: number): void {
    switch (id) {
      case SectionId.Custom:
        return this.custom(r, index, lastId);
      case SectionId.Type:
        return this.typeSection(r);
      case SectionId.Import:
        return this.importSection(r);
      case SectionId.Function: {
        const n = r.count(1);
        for (let i = 0; i < n; i++) this.info.functions.push(r.u32());
        return;
      }
      case SectionId.Table: {
        const n = r.count(2);
        for (let i = 0; i < n; i++) this.info.tables.push(this.tableType(r));
        return;
      }
      case SectionId.Memory: {
        const n = r.count(2);
        for (let i = 0; i < n; i++) this.info.memories.push(this.memoryType(r));
        return;
      }
      case SectionId.Global:
        return this.globalSection(r);
      case SectionId.Export:
        return this.exportSection(r);
      case SectionId.Start:
        this.info.start = r.u32();
        return;
      case SectionId.Element:
        return this.elementSection(r);
      case SectionId.Code:
        return this.codeSection(r);
      case SectionId.Data:
        return this.dataSection(r);
      case SectionId.DataCount:
        this.info.dataCount = r.u32();
        this.features |= Feature.BulkMemory;
        return;
    }
  }

  private custom(r: Reader, index: number, lastId: number): void {
    const name = r.name();
    this.info.customs.push({ name, payload: { start: r.pos, end: r.end }, section: index, after: lastId });
    r.pos = r.end;
  }

  private typeSection(r: Reader): void {
    // Two bytes at least: GC type forms can be that short and deserve their own error.
    const n = r.count(2);
    for (let i = 0; i < n; i++) {
      const at = r.pos;
      const form = r.u8();
      if (form !== 0x60) {
        if (form === 0x4e || form === 0x4f || form === 0x50 || form === 0x5e || form === 0x5f) {
          throw new UnsupportedFeatureError('gc', `type form ${hex(form)}`, at);
        }
        if (form === 0x5d) throw new UnsupportedFeatureError('stack-switching', 'continuation type', at);
        throw new ModuleFormatError(`invalid type form ${hex(form)}, expected a function type (0x60)`, at);
      }
      const params = this.valTypes(r);
      const results = this.valTypes(r);
      if (results.length > 1) this.features |= Feature.MultiValue;
      this.info.types.push({ params, results });
    }
  }

  private valTypes(r: Reader): ValType[] {
    const n = r.count(1);
    const out: ValType[] = [];
    for (let i = 0; i < n; i++) {
      const t = readValType(r);
      this.features |= valTypeFeatures(t);
      out.push(valTypeName(t));
    }
    return out;
  }

  private limits(r: Reader, what: 'table' | 'memory'): { initial: number; maximum?: number; shared: boolean; memory64: boolean } {
    const at = r.pos;
    const flags = r.u8();
    if (flags > 1) {
      if (flags & 0x04) throw new UnsupportedFeatureError('memory64', `64-bit ${what}`, at);
      if (flags <= 3) throw new UnsupportedFeatureError('threads', `shared ${what}`, at);
      if (what === 'memory' && flags < 16) throw new UnsupportedFeatureError('custom-page-sizes', 'custom memory page size', at);
      throw new ModuleFormatError(`invalid ${what} limits flags ${hex(flags)}`, at);
    }
    const initial = r.u32();
    if (flags === 0) return { initial, shared: false, memory64: false };
    const maximum = r.u32();
    return { initial, maximum, shared: false, memory64: false };
  }

  private tableType(r: Reader): TableType {
    const at = r.pos;
    if (r.bytes[at] === 0x40 && at < r.end) {
      throw new UnsupportedFeatureError('function-references', 'table with an initializer expression', at);
    }
    const ref = readRefType(r);
    if (ref !== 0x70) this.features |= Feature.ReferenceTypes;
    const { initial, maximum } = this.limits(r, 'table');
    const element = valTypeName(ref) as RefType;
    return maximum === undefined ? { element, initial } : { element, initial, maximum };
  }

  private memoryType(r: Reader): MemoryType {
    const l = this.limits(r, 'memory');
    return l.maximum === undefined ? { initial: l.initial, shared: false, memory64: false } : l;
  }

  private globalType(r: Reader): GlobalType {
    const t = readValType(r);
    this.features |= valTypeFeatures(t);
    const at = r.pos;
    const m = r.u8();
    if (m > 1) throw new ModuleFormatError(`invalid global mutability ${hex(m)}`, at);
    return { type: valTypeName(t), mutable: m === 1 };
  }

  private importSection(r: Reader): void {
    const info = this.info;
    const n = r.count(4);
    for (let i = 0; i < n; i++) {
      const module = r.name();
      const field = r.name();
      const at = r.pos;
      const kind = r.u8();
      switch (kind) {
        case 0:
          info.imports.push({ module, field, kind: 'func', typeIndex: r.u32() });
          info.importedFunctions++;
          break;
        case 1:
          info.imports.push({ module, field, kind: 'table', table: this.tableType(r) });
          info.importedTables++;
          break;
        case 2:
          info.imports.push({ module, field, kind: 'memory', memory: this.memoryType(r) });
          info.importedMemories++;
          break;
        case 3: {
          const global = this.globalType(r);
          if (global.mutable) this.features |= Feature.MutableGlobals;
          info.imports.push({ module, field, kind: 'global', global });
          info.importedGlobals++;
          this.globalMutability.push(global.mutable);
          break;
        }
        default:
          refuseExternKind(kind, at, 'import');
      }
    }
  }

  private constExpr(r: Reader): { range: Range; funcRefs: number } {
    const start = r.pos;
    const funcRefs = scanConstExpr(this.code, start, r.end);
    r.pos = this.code.pos;
    return { range: { start, end: r.pos }, funcRefs };
  }

  private globalSection(r: Reader): void {
    const n = r.count(3);
    for (let i = 0; i < n; i++) {
      const start = r.pos;
      const { type, mutable } = this.globalType(r);
      const { range, funcRefs } = this.constExpr(r);
      this.info.globals.push({ type, mutable, init: range, range: { start, end: r.pos }, funcRefs });
      this.globalMutability.push(mutable);
    }
  }

  private exportSection(r: Reader): void {
    const n = r.count(3);
    for (let i = 0; i < n; i++) {
      const name = r.name();
      const at = r.pos;
      const kind = r.u8();
      if (kind > 3) refuseExternKind(kind, at, 'export');
      const index = r.u32();
      if (kind === 3 && this.globalMutability[index]) this.features |= Feature.MutableGlobals;
      this.info.exports.push({ name, kind: KIND_NAMES[kind], index });
    }
  }

  private elementSection(r: Reader): void {
    const n = r.count(2);
    for (let i = 0; i < n; i++) {
      const start = r.pos;
      const flagsAt = r.pos;
      const flags = r.u32();
      if (flags > 7) throw new ModuleFormatError(`invalid element segment flags ${flags}`, flagsAt);
      const passiveOrDeclarative = (flags & 1) !== 0;
      const explicitTable = (flags & 2) !== 0;
      const expressions = (flags & 4) !== 0;
      const mode = !passiveOrDeclarative ? 'active' : explicitTable ? 'declarative' : 'passive';
      let table = 0;
      let offset: Range | undefined;
      if (mode === 'active') {
        if (explicitTable) table = r.u32();
        offset = this.constExpr(r).range;
      }
      let type: RefType = 'funcref';
      if (flags & 3) {
        // Segments other than the MVP form state their element kind or type.
        const at = r.pos;
        if (expressions) {
          type = valTypeName(readRefType(r)) as RefType;
          if (type !== 'funcref') this.features |= Feature.ReferenceTypes;
        } else {
          const kind = r.u8();
          if (kind !== 0) throw new ModuleFormatError(`invalid element kind ${hex(kind)}`, at);
        }
      }
      if (mode === 'passive') this.features |= Feature.BulkMemory;
      else if (mode === 'declarative' || table !== 0) this.features |= Feature.ReferenceTypes;
      else if (flags !== 0) this.features |= Feature.BulkMemory;
      const count = r.count(1);
      const itemsStart = r.pos;
      if (expressions) {
        for (let j = 0; j < count; j++) this.constExpr(r);
      } else {
        for (let j = 0; j < count; j++) r.u32();
      }
      this.info.elements.push({
        flags,
        mode,
        table,
        ...(offset ? { offset } : {}),
        type,
        encoding: expressions ? 'expressions' : 'indices',
        count,
        items: { start: itemsStart, end: r.pos },
        range: { start, end: r.pos },
      });
    }
  }

  private codeSection(r: Reader): void {
    const n = r.count(1);
    const code = this.code;
    for (let i = 0; i < n; i++) {
      const sizeAt = r.pos;
      const size = r.u32();
      if (size > r.remaining()) throw new ModuleFormatError(`function body size ${size} out of bounds of the code section`, sizeAt);
      const start = r.pos;
      const end = start + size;
      const body = new Reader(r.bytes, start, end, 'function body');
      const groups = body.count(2);
      let locals = 0;
      for (let j = 0; j < groups; j++) {
        const at = body.pos;
        locals += body.u32();
        if (locals > 0xffffffff) throw new ModuleFormatError('too many locals', at);
        this.features |= valTypeFeatures(readValType(body));
      }
      const instructions = body.pos;
      const stats = scanBody(code, instructions, end);
      this.info.code.push({
        range: { start, end },
        locals: { start, end: instructions },
        instructions,
        instructionCount: stats.instructionCount,
        loops: stats.loops,
        calls: stats.calls,
        funcRefs: stats.funcRefs,
      });
      r.pos = end;
    }
  }

  private dataSection(r: Reader): void {
    const n = r.count(2);
    for (let i = 0; i < n; i++) {
      const start = r.pos;
      const flagsAt = r.pos;
      const flags = r.u32();
      if (flags > 2) throw new ModuleFormatError(`invalid data segment flags ${flags}`, flagsAt);
      let memory = 0;
      let offset: Range | undefined;
      if (flags === 2) {
        memory = r.u32();
        this.features |= memory === 0 ? Feature.BulkMemory : Feature.MultiMemory;
      }
      if (flags !== 1) offset = this.constExpr(r).range;
      else this.features |= Feature.BulkMemory;
      const dataStart = r.byteVector();
      const range = { start, end: r.pos };
      const data = { start: dataStart, end: r.pos };
      this.info.data.push(
        offset ? { flags, mode: 'active', memory, offset, data, range } : { flags, mode: 'passive', memory, data, range },
      );
    }
  }
}

/** Parse and decode a module. Throws ModuleFormatError or UnsupportedFeatureError. */
export function parseModule(bytes: Uint8Array): ModuleInfo {
  return new Parser(bytes).parse();
}
