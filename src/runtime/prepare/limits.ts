// Bounds on what a module may ask of preparation and of the engine, checked
// in one linear pass over the parsed module before any heavy work: the
// rewrite's time and output grow with function size and locals, and with
// the operand stack values live at each suspension point, which it saves
// and restores there (so deep stacks at many calls grow it quadratically).
// The limits sit far above what compilers produce (SQLite stays below a
// tenth of each, mostly far below) and, where Gate has one, near Gate's
// own. prepareModule() calls checkModuleLimits() first.

import { Reader, Writer } from '../wasm/binary.ts';
import { CodeReader, MiscOp, Op } from '../wasm/instructions.ts';
import { SectionId, type ModuleInfo } from '../wasm/module.ts';
import { PrepareError } from './errors.ts';

export interface ModuleLimits {
  /** Bytes of one function body (locals declaration and code). */
  functionSize: number;
  /** Parameters plus declared locals of one function. */
  locals: number;
  /** Most values on one function's operand stack at once. */
  stackDepth: number;
  /**
   * Operand stack values live at suspension points (calls, loop headers,
   * bulk operations), summed over the module, at most this many plus one per
   * byte of the module: the rewrite saves and restores each at its point.
   */
  savedValues: number;
  /** Tables, defined and imported. */
  tables: number;
  /** Entries of one table: its initial size, and its maximum (a larger or absent maximum is lowered to this). */
  tableEntries: number;
}

/**
 * Bumped when the limits, the table maxima they write, or what they add to
 * ProgramInfo change: prepared modules are cached by it too (saved stacks do
 * not depend on it, so PREPARE_VERSION need not change).
 */
export const LIMITS_VERSION = 1;

export const MODULE_LIMITS: Readonly<ModuleLimits> = {
  // V8 accepts up to 7,654,321 bytes; the largest functions of big C++
  // programs compiled to wasm are a few hundred KB.
  functionSize: 4 * 1024 * 1024,
  // Gate's compiler (wag) accepts at most 8,190; V8 50,000.
  locals: 8190,
  // Compiled code rarely goes past a few dozen (SQLite: 14).
  stackDepth: 1024,
  // SQLite (1 MB) has 764 in all. A function pushing 1,000 call results has
  // 500,000, which the rewrite turns into 7.5 MB of code.
  savedValues: 65_536,
  // Compiled C and Rust use one.
  tables: 16,
  // Gate and V8 allow 10,000,000, which V8 holds as ~300 MiB of heap per
  // instance; an entry costs about TABLE_ENTRY_BYTES.
  tableEntries: 1_000_000,
};

/** V8 heap an instance spends per table entry (measured: 10,000,000 entries, 306 MiB). */
export const TABLE_ENTRY_BYTES = 32;

/** The maximum a table gets after preparation: its own, lowered to the entry limit. */
export function tableMaximum(table: { initial: number; maximum?: number }, limits: Readonly<ModuleLimits> = MODULE_LIMITS): number {
  return Math.min(table.maximum ?? limits.tableEntries, limits.tableEntries);
}

/** Bytes of V8 heap the module's tables may take per instance, at their prepared maxima. */
export function tableBytes(info: ModuleInfo, limits: Readonly<ModuleLimits> = MODULE_LIMITS): number {
  let entries = 0;
  for (const t of info.tables) entries += tableMaximum(t, limits);
  return entries * TABLE_ENTRY_BYTES;
}

/**
 * A copy of the module whose tables have their prepared maxima (see
 * tableMaximum), so that table.grow fails past the entry limit; the module
 * itself when nothing changes. `info` is parseModule(bytes).
 */
export function lowerTableMaxima(bytes: Uint8Array, info: ModuleInfo, limits: Readonly<ModuleLimits> = MODULE_LIMITS): Uint8Array {
  if (info.tables.every((t) => t.maximum !== undefined && t.maximum <= limits.tableEntries)) return bytes;
  const section = info.sections.find((s) => s.id === SectionId.Table)!;
  const out = new Writer(bytes.length + 16 * info.tables.length);
  out.bytes(bytes, 0, section.start);
  out.u8(SectionId.Table);
  const size = out.beginSize();
  out.u32(info.tables.length);
  for (const t of info.tables) {
    out.u8(t.element === 'funcref' ? 0x70 : 0x6f);
    out.u8(1);
    out.u32(t.initial);
    out.u32(tableMaximum(t, limits));
  }
  out.endSize(size);
  out.bytes(bytes, section.end, bytes.length);
  return out.finish();
}

function refuse(message: string): never {
  throw new PrepareError('ERR_MODULE_LIMIT', message);
}

/**
 * Throw PrepareError (ERR_MODULE_LIMIT, naming the limit and where) when the
 * module exceeds a limit. `info` is parseModule(bytes) of a valid module.
 */
export function checkModuleLimits(bytes: Uint8Array, info: ModuleInfo, limits: Readonly<ModuleLimits> = MODULE_LIMITS): void {
  const tableCount = info.tables.length + info.imports.filter((i) => i.kind === 'table').length;
  if (tableCount > limits.tables) refuse(`module has ${tableCount} tables; the limit is ${limits.tables}`);
  info.tables.forEach((t, i) => {
    if (t.initial > limits.tableEntries) {
      refuse(`table ${i} has ${t.initial} initial entries; the limit is ${limits.tableEntries}`);
    }
  });
  const reader = new CodeReader(bytes);
  const depth = new StackDepth(info, reader);
  const savedLimit = limits.savedValues + bytes.length;
  let saved = 0;
  info.code.forEach((body, i) => {
    const index = info.importedFunctions + i;
    const size = body.range.end - body.range.start;
    if (size > limits.functionSize) refuse(`function ${index} is ${size} bytes; the limit is ${limits.functionSize}`);
    const locals = info.types[info.functionType(index)].params.length + declaredLocals(bytes, body.locals.start, body.locals.end);
    if (locals > limits.locals) refuse(`function ${index} has ${locals} locals; the limit is ${limits.locals}`);
    const deepest = depth.measure(body.instructions, body.range.end, limits.stackDepth);
    if (deepest > limits.stackDepth) {
      refuse(`function ${index} holds more than ${limits.stackDepth} values on its operand stack; the limit is ${limits.stackDepth}`);
    }
    saved += depth.saved;
    if (saved > savedLimit) {
      refuse(
        `module holds more than ${savedLimit} operand stack values at its calls, loops and bulk operations ` +
          `(by function ${index}); the limit is ${limits.savedValues} plus one per byte of the module`,
      );
    }
  });
}

/** The deepest operand stack of each defined function (for tests and tools). */
export function operandStackDepths(bytes: Uint8Array, info: ModuleInfo): number[] {
  const depth = new StackDepth(info, new CodeReader(bytes));
  return info.code.map((body) => depth.measure(body.instructions, body.range.end, Infinity));
}

/** Operand stack values live at the suspension points of each defined function (see StackDepth.saved). */
export function savedStackValues(bytes: Uint8Array, info: ModuleInfo): number[] {
  const depth = new StackDepth(info, new CodeReader(bytes));
  return info.code.map((body) => {
    depth.measure(body.instructions, body.range.end, Infinity);
    return depth.saved;
  });
}

function declaredLocals(bytes: Uint8Array, start: number, end: number): number {
  const r = new Reader(bytes, start, end, 'locals');
  let n = 0;
  for (let groups = r.u32(); groups > 0; groups--) {
    n += r.u32();
    r.u8();
  }
  return n;
}

// Net stack effect of the single-byte opcodes that are not control, calls or
// variable-length: loads and stores, constants, numeric operations.
const EFFECT = new Int8Array(256);
function effect(from: number, to: number, delta: number): void {
  for (let op = from; op <= to; op++) EFFECT[op] = delta;
}
effect(0x1a, 0x1a, -1); // drop
effect(0x1b, 0x1c, -2); // select
effect(0x20, 0x20, 1); // local.get
effect(0x21, 0x21, -1); // local.set
effect(0x23, 0x23, 1); // global.get
effect(0x24, 0x24, -1); // global.set
effect(0x26, 0x26, -2); // table.set
effect(0x36, 0x3e, -2); // stores
effect(0x3f, 0x3f, 1); // memory.size
effect(0x41, 0x44, 1); // constants
effect(0x46, 0x4f, -1); // i32 comparisons
effect(0x51, 0x66, -1); // i64, f32, f64 comparisons
effect(0x6a, 0x78, -1); // i32 binary
effect(0x7c, 0x8a, -1); // i64 binary
effect(0x92, 0x98, -1); // f32 binary
effect(0xa0, 0xa6, -1); // f64 binary
effect(0xd0, 0xd0, 1); // ref.null
effect(0xd2, 0xd2, 1); // ref.func
// Everything else not handled below takes and leaves one value (0).

/** SIMD (0xFD) sub-opcodes that take two vectors, or a vector and a scalar, and leave one value. */
const SIMD_BINARY = new Set<number>([0x0d, 0x0e, 0x17, 0x1a, 0x1c, 0x1e, 0x20, 0x22, 0x4e, 0x4f, 0x50, 0x51, 0x54, 0x55, 0x56, 0x57]);
function simdEffect(sub: number): number {
  if (sub === 0x0b) return -2; // v128.store
  if (sub === 0x0c) return 1; // v128.const
  if (sub === 0x52) return -2; // v128.bitselect
  if (sub >= 0x58 && sub <= 0x5b) return -2; // store lane
  if (SIMD_BINARY.has(sub) || (sub >= 0x23 && sub <= 0x4c)) return -1; // lanes, comparisons, bitwise, load lane
  if (sub <= 0x22 || sub === 0x4d || sub === 0x53 || sub === 0x5c || sub === 0x5d || sub === 0x5e || sub === 0x5f) return 0;
  if (sub >= 0xf8) return 0; // conversions
  return SIMD_UNARY.has(sub) ? 0 : -1; // the rest of 0x60-0xf7: arithmetic
}
const SIMD_UNARY = new Set<number>([
  0x60, 0x61, 0x62, 0x63, 0x64, 0x67, 0x68, 0x69, 0x6a, 0x74, 0x75, 0x7a, 0x7c, 0x7d, 0x7e, 0x7f,
  0x80, 0x81, 0x83, 0x84, 0x87, 0x88, 0x89, 0x8a, 0x94,
  0xa0, 0xa1, 0xa3, 0xa4, 0xa7, 0xa8, 0xa9, 0xaa,
  0xc0, 0xc1, 0xc3, 0xc4, 0xc7, 0xc8, 0xc9, 0xca,
  0xe0, 0xe1, 0xe3, 0xec, 0xed, 0xef,
]);

function miscEffect(sub: number): number {
  if (sub <= 7) return 0; // saturating truncations
  switch (sub) {
    case MiscOp.MemoryInit:
    case MiscOp.MemoryCopy:
    case MiscOp.MemoryFill:
    case MiscOp.TableInit:
    case MiscOp.TableCopy:
    case MiscOp.TableFill:
      return -3;
    case MiscOp.TableGrow:
      return -1;
    case MiscOp.TableSize:
      return 1;
    default:
      return 0; // data.drop, elem.drop
  }
}

/** The deepest operand stack of function bodies, by their block structure and the arity of each instruction. */
class StackDepth {
  private readonly info: ModuleInfo;
  private readonly reader: CodeReader;
  /** Per open block: the stack height below its values, and how many values it leaves. */
  private base: number[] = [];
  private params: number[] = [];
  private results: number[] = [];

  constructor(info: ModuleInfo, reader: CodeReader) {
    this.info = info;
    this.reader = reader;
  }

  /** Block type → [params, results]. */
  private arity(blockType: number): [number, number] {
    if (blockType === -64) return [0, 0];
    if (blockType < 0) return [0, 1];
    const t = this.info.types[blockType];
    return [t.params.length, t.results.length];
  }

  private call(typeIndex: number, extra: number, height: number): number {
    const t = this.info.types[typeIndex];
    return height - t.params.length - extra + t.results.length;
  }

  /**
   * Operand stack values live at the suspension points of the last body
   * measured (calls, loop headers, bulk operations): the rewrite saves and
   * restores each of them there, so its output grows with their sum.
   */
  saved = 0;

  /** The deepest stack of the body, stopping early once it passes `stop`; `saved` is set too. */
  measure(start: number, end: number, stop: number): number {
    const { reader, base, params, results, info } = this;
    this.saved = 0;
    reader.reset(start, end);
    base.length = 0;
    params.length = 0;
    results.length = 0;
    let height = 0;
    let deepest = 0;
    let frameBase = 0;
    while (reader.pos < end) {
      const op = reader.next();
      switch (op) {
        case Op.Block:
        case Op.Loop:
        case Op.If: {
          const [takes, leaves] = this.arity(reader.index);
          if (op === Op.If) height--;
          if (op === Op.Loop) this.saved += height;
          frameBase = Math.max(0, height - takes);
          base.push(frameBase);
          params.push(takes);
          results.push(leaves);
          break;
        }
        case Op.Else:
          // The if's parameters are on the stack again for the else branch.
          height = frameBase + params[params.length - 1];
          break;
        case Op.End:
          if (base.length === 0) return deepest;
          params.pop();
          height = base.pop()! + results.pop()!;
          frameBase = base.length > 0 ? base[base.length - 1] : 0;
          break;
        case Op.Unreachable:
        case Op.Br:
        case Op.BrTable:
        case Op.Return:
          height = frameBase;
          break;
        case Op.BrIf:
          height--;
          break;
        case Op.Call: {
          const type = info.functionType(reader.index);
          this.saved += height - info.types[type].params.length;
          height = this.call(type, 0, height);
          break;
        }
        case Op.CallIndirect:
          this.saved += height - info.types[reader.index].params.length - 1;
          height = this.call(reader.index, 1, height);
          break;
        case Op.ReturnCall:
        case Op.ReturnCallIndirect:
          height = frameBase;
          break;
        case Op.PrefixMisc: {
          const effect = miscEffect(reader.sub);
          // Bulk operations (three operands, or two for table.grow) are suspension points.
          if (effect <= -1 && reader.sub !== MiscOp.TableGrow) this.saved += height - 3;
          else if (reader.sub === MiscOp.TableGrow) this.saved += height - 2;
          height += effect;
          break;
        }
        case Op.PrefixSimd:
          height += simdEffect(reader.sub);
          break;
        default:
          height += EFFECT[op];
      }
      // Unreachable code may pop below its block: the stack is polymorphic there.
      if (height < frameBase) height = frameBase;
      if (height > deepest) {
        deepest = height;
        if (deepest > stop) return deepest;
      }
    }
    return deepest;
  }
}
