// Instruction decoder for WebAssembly 2.0 plus tail calls and multi-memory.
//
// CodeReader is a cursor: next() decodes one instruction and leaves its opcode,
// byte range and immediates in fields of the reader, so walking a body
// allocates nothing per instruction.

import { Reader, ModuleFormatError, UnsupportedFeatureError, hex } from './binary.ts';
import { Feature, readHeapType, readValType, refuseTypeCode, valTypeFeatures } from './features.ts';

/** Single-byte opcodes used by callers (the decoder knows them all). */
export const Op = {
  Unreachable: 0x00,
  Nop: 0x01,
  Block: 0x02,
  Loop: 0x03,
  If: 0x04,
  Else: 0x05,
  End: 0x0b,
  Br: 0x0c,
  BrIf: 0x0d,
  BrTable: 0x0e,
  Return: 0x0f,
  Call: 0x10,
  CallIndirect: 0x11,
  ReturnCall: 0x12,
  ReturnCallIndirect: 0x13,
  Drop: 0x1a,
  Select: 0x1b,
  SelectT: 0x1c,
  LocalGet: 0x20,
  LocalSet: 0x21,
  LocalTee: 0x22,
  GlobalGet: 0x23,
  GlobalSet: 0x24,
  TableGet: 0x25,
  TableSet: 0x26,
  MemorySize: 0x3f,
  MemoryGrow: 0x40,
  I32Const: 0x41,
  I64Const: 0x42,
  F32Const: 0x43,
  F64Const: 0x44,
  I32LtS: 0x48,
  I32Add: 0x6a,
  I32Sub: 0x6b,
  I32Mul: 0x6c,
  I64Add: 0x7c,
  I64Sub: 0x7d,
  I64Mul: 0x7e,
  RefNull: 0xd0,
  RefIsNull: 0xd1,
  RefFunc: 0xd2,
  PrefixMisc: 0xfc,
  PrefixSimd: 0xfd,
} as const;

/** Sub-opcodes after the 0xFC prefix. */
export const MiscOp = {
  MemoryInit: 8,
  DataDrop: 9,
  MemoryCopy: 10,
  MemoryFill: 11,
  TableInit: 12,
  ElemDrop: 13,
  TableCopy: 14,
  TableGrow: 15,
  TableSize: 16,
  TableFill: 17,
} as const;

/** A few sub-opcodes after the 0xFD prefix. */
export const SimdOp = {
  V128Load: 0x00,
  V128Store: 0x0b,
  V128Const: 0x0c,
  I8x16Shuffle: 0x0d,
  V128Load8Lane: 0x54,
  V128Store64Lane: 0x5b,
} as const;

// Immediate layouts.
const K_NONE = 0;
const K_BLOCK = 1; // block type
const K_IDX = 2; // one u32
const K_CALL_INDIRECT = 3; // type, table
const K_BR_TABLE = 4;
const K_MEMARG = 5;
const K_MEMIDX = 6; // memory.size / memory.grow
const K_I32 = 7;
const K_I64 = 8;
const K_F32 = 9;
const K_F64 = 10;
const K_SELECT_T = 11;
const K_REF_NULL = 12;
const K_MISC = 13;
const K_SIMD = 14;
const K_INVALID = 15;
const K_UNSUPPORTED = 16;

// SIMD immediate layouts.
const S_NONE = 0;
const S_MEMARG = 1;
const S_BYTES16 = 2; // v128.const, i8x16.shuffle
const S_LANE = 3;
const S_MEMARG_LANE = 4;
const S_INVALID = 5;
const S_RELAXED = 6;

const KIND = new Uint8Array(256).fill(K_INVALID);
const FEATURES = new Uint16Array(256);
const UNSUPPORTED = new Map<number, [feature: string, what: string]>();

function setKind(from: number, to: number, kind: number, features = 0): void {
  for (let op = from; op <= to; op++) {
    KIND[op] = kind;
    FEATURES[op] = features;
  }
}

setKind(0x00, 0x01, K_NONE); // unreachable, nop
setKind(0x02, 0x04, K_BLOCK); // block, loop, if
setKind(0x05, 0x05, K_NONE); // else
setKind(0x0b, 0x0b, K_NONE); // end
setKind(0x0c, 0x0d, K_IDX); // br, br_if
setKind(0x0e, 0x0e, K_BR_TABLE);
setKind(0x0f, 0x0f, K_NONE); // return
setKind(0x10, 0x10, K_IDX); // call
setKind(0x11, 0x11, K_CALL_INDIRECT);
setKind(0x12, 0x12, K_IDX, Feature.TailCall); // return_call
setKind(0x13, 0x13, K_CALL_INDIRECT, Feature.TailCall); // return_call_indirect
setKind(0x1a, 0x1b, K_NONE); // drop, select
setKind(0x1c, 0x1c, K_SELECT_T, Feature.ReferenceTypes);
setKind(0x20, 0x24, K_IDX); // local.get/set/tee, global.get/set
setKind(0x25, 0x26, K_IDX, Feature.ReferenceTypes); // table.get/set
setKind(0x28, 0x3e, K_MEMARG); // loads and stores
setKind(0x3f, 0x40, K_MEMIDX); // memory.size, memory.grow
setKind(0x41, 0x41, K_I32);
setKind(0x42, 0x42, K_I64);
setKind(0x43, 0x43, K_F32);
setKind(0x44, 0x44, K_F64);
setKind(0x45, 0xbf, K_NONE); // numeric
setKind(0xc0, 0xc4, K_NONE, Feature.SignExt);
setKind(0xd0, 0xd0, K_REF_NULL, Feature.ReferenceTypes);
setKind(0xd1, 0xd1, K_NONE, Feature.ReferenceTypes); // ref.is_null
setKind(0xd2, 0xd2, K_IDX, Feature.ReferenceTypes); // ref.func
setKind(0xfc, 0xfc, K_MISC);
setKind(0xfd, 0xfd, K_SIMD, Feature.Simd);

function unsupported(ops: number[], feature: string, what: string): void {
  for (const op of ops) {
    KIND[op] = K_UNSUPPORTED;
    UNSUPPORTED.set(op, [feature, what]);
  }
}
unsupported([0x06, 0x07, 0x08, 0x09, 0x0a, 0x18, 0x19, 0x1f], 'exception-handling', 'exception handling instruction');
unsupported([0x14, 0x15, 0xd3, 0xd4, 0xd6], 'function-references', 'typed function reference instruction');
unsupported([0xd5, 0xfb], 'gc', 'GC instruction');
unsupported([0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6], 'stack-switching', 'stack switching instruction');
unsupported([0xfe], 'threads', 'atomic instruction');

const SIMD_LIMIT = 0x114;
const SIMD_KIND = new Uint8Array(SIMD_LIMIT).fill(S_NONE);
for (let op = 0x00; op <= 0x0b; op++) SIMD_KIND[op] = S_MEMARG; // v128 loads and store
SIMD_KIND[0x0c] = S_BYTES16; // v128.const
SIMD_KIND[0x0d] = S_BYTES16; // i8x16.shuffle
for (let op = 0x15; op <= 0x22; op++) SIMD_KIND[op] = S_LANE; // extract/replace_lane
for (let op = 0x54; op <= 0x5b; op++) SIMD_KIND[op] = S_MEMARG_LANE; // load/store_lane
SIMD_KIND[0x5c] = S_MEMARG; // v128.load32_zero
SIMD_KIND[0x5d] = S_MEMARG; // v128.load64_zero
// Opcodes the SIMD proposal left unassigned.
for (const op of [0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee]) {
  SIMD_KIND[op] = S_INVALID;
}
for (let op = 0x100; op < SIMD_LIMIT; op++) SIMD_KIND[op] = S_RELAXED;

/**
 * Cursor over the instructions of a code body or constant expression.
 *
 * After next(), these fields describe the instruction (fields not listed for
 * an opcode keep stale values):
 * - start, pos: its byte range [start, pos); immStart: first byte after the
 *   opcode (and sub-opcode), where the immediates begin.
 * - op: first byte; sub: sub-opcode after a 0xFC/0xFD prefix (0 otherwise).
 * - index: block type of block/loop/if (negative: -64 empty, -1 i32, -2 i64,
 *   -3 f32, -4 f64, -5 v128, -16 funcref, -17 externref; else a type index);
 *   label of br/br_if; number of non-default targets of br_table; function
 *   of call/return_call/ref.func; type of call_indirect/return_call_indirect;
 *   local of local.*; global of global.*; table of table.get/set/grow/size/
 *   fill, destination table of table.copy; element segment of table.init and
 *   elem.drop; data segment of memory.init and data.drop; heap type code of
 *   ref.null; number of types of typed select.
 * - index2: table of call_indirect/return_call_indirect; default label of
 *   br_table; table of table.init; source table of table.copy; source memory
 *   of memory.copy.
 * - memory, align, offset: memory index of every memory instruction (for
 *   memory.copy the destination), and memarg alignment exponent and offset.
 * - lane: lane index of SIMD lane instructions.
 * - value: the constant of i32.const.
 */
export class CodeReader extends Reader {
  start = 0;
  immStart = 0;
  op = 0;
  sub = 0;
  index = 0;
  index2 = 0;
  memory = 0;
  align = 0;
  offset = 0;
  lane = 0;
  value = 0;
  /** Feature bits seen so far (accumulates across next() calls until reset by the caller). */
  features = 0;
  /** Set once memory.init or data.drop is seen: those require a data count section. */
  usesDataCount = false;

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    super(bytes, pos, end, 'function body');
  }

  /** Continue at [pos, end). */
  reset(pos: number, end: number): void {
    this.pos = pos;
    this.end = end;
  }

  /** Decode the next instruction; returns its first byte. */
  next(): number {
    const pos = this.pos;
    if (pos >= this.end) this.eof();
    const op = this.bytes[pos];
    this.start = pos;
    this.pos = pos + 1;
    this.op = op;
    this.sub = 0;
    this.immStart = pos + 1;
    this.features |= FEATURES[op];
    switch (KIND[op]) {
      case K_NONE:
        break;
      case K_IDX:
        this.index = this.u32();
        break;
      case K_BLOCK:
        this.index = this.blockType();
        break;
      case K_MEMARG:
        this.memarg();
        break;
      case K_I32:
        this.value = this.s32();
        break;
      case K_I64:
        this.skipS64();
        break;
      case K_F32:
        this.skip(4);
        break;
      case K_F64:
        this.skip(8);
        break;
      case K_CALL_INDIRECT:
        this.index = this.u32();
        this.index2 = this.u32();
        if (this.index2 !== 0) this.features |= Feature.ReferenceTypes;
        break;
      case K_BR_TABLE: {
        const n = this.count(1);
        for (let i = 0; i < n; i++) this.u32();
        this.index = n;
        this.index2 = this.u32();
        break;
      }
      case K_MEMIDX:
        this.memory = this.memoryIndex();
        break;
      case K_SELECT_T: {
        const n = this.count(1);
        let t = 0;
        for (let i = 0; i < n; i++) {
          t = readValType(this);
          this.features |= valTypeFeatures(t);
        }
        this.index = n;
        this.index2 = t;
        break;
      }
      case K_REF_NULL:
        this.index = readHeapType(this);
        break;
      case K_MISC:
        this.misc();
        break;
      case K_SIMD:
        this.simd();
        break;
      case K_UNSUPPORTED:
        this.refuse(op);
        break;
      default:
        throw new ModuleFormatError(`unknown opcode ${hex(op)}`, pos);
    }
    return op;
  }

  private blockType(): number {
    const at = this.pos;
    if (at >= this.end) this.eof();
    const b = this.bytes[at];
    if (b >= 0x40 && b < 0x80) {
      // Single-byte negative s33: the empty type or a value type.
      if (b === 0x40) {
        this.pos = at + 1;
        return -64;
      }
      if ((b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f) {
        this.pos = at + 1;
        this.features |= valTypeFeatures(b);
        return b - 0x80;
      }
      refuseTypeCode(b, at, 'block type');
    }
    const index = this.s33();
    if (index < 0) throw new ModuleFormatError('invalid block type', at);
    this.features |= Feature.MultiValue;
    return index;
  }

  private memarg(): void {
    const at = this.pos;
    let align = this.u32();
    let memory = 0;
    if (align >= 64) {
      // Bit 6 announces an explicit memory index (multi-memory).
      if (align >= 128) throw new ModuleFormatError(`invalid memory argument flags ${align}`, at);
      align -= 64;
      memory = this.u32();
      this.features |= Feature.MultiMemory;
    }
    this.align = align;
    this.memory = memory;
    this.offset = this.memoryOffset();
  }

  // A 32-bit memory's offset: a u32, at most 5 bytes (V8 decodes it as
  // memory64's u64 and accepts longer encodings; WebAssembly 2.0 does not).
  private memoryOffset(): number {
    const pos = this.pos;
    if (pos < this.end && this.bytes[pos] < 0x80) {
      this.pos = pos + 1;
      return this.bytes[pos];
    }
    return this.u32();
  }

  private memoryIndex(): number {
    // A reserved zero byte in 2.0, a memory index with multi-memory.
    const m = this.u32();
    if (m !== 0) this.features |= Feature.MultiMemory;
    return m;
  }

  private misc(): void {
    const sub = this.u32();
    this.sub = sub;
    this.immStart = this.pos;
    if (sub <= 7) {
      this.features |= Feature.SatFloatToInt;
      return;
    }
    switch (sub) {
      case MiscOp.MemoryInit:
        this.index = this.u32();
        this.memory = this.memoryIndex();
        this.usesDataCount = true;
        this.features |= Feature.BulkMemory;
        return;
      case MiscOp.DataDrop:
        this.index = this.u32();
        this.usesDataCount = true;
        this.features |= Feature.BulkMemory;
        return;
      case MiscOp.MemoryCopy:
        this.memory = this.memoryIndex();
        this.index2 = this.memoryIndex();
        this.features |= Feature.BulkMemory;
        return;
      case MiscOp.MemoryFill:
        this.memory = this.memoryIndex();
        this.features |= Feature.BulkMemory;
        return;
      case MiscOp.TableInit:
        this.index = this.u32();
        this.index2 = this.u32();
        this.features |= this.index2 === 0 ? Feature.BulkMemory : Feature.BulkMemory | Feature.ReferenceTypes;
        return;
      case MiscOp.ElemDrop:
        this.index = this.u32();
        this.features |= Feature.BulkMemory;
        return;
      case MiscOp.TableCopy:
        this.index = this.u32();
        this.index2 = this.u32();
        this.features |= (this.index | this.index2) === 0 ? Feature.BulkMemory : Feature.BulkMemory | Feature.ReferenceTypes;
        return;
      case MiscOp.TableGrow:
      case MiscOp.TableSize:
      case MiscOp.TableFill:
        this.index = this.u32();
        this.features |= Feature.ReferenceTypes;
        return;
      case 19:
      case 20:
      case 21:
      case 22:
        throw new UnsupportedFeatureError('wide-arithmetic', `instruction 0xfc ${hex(sub)}`, this.start);
      default:
        throw new ModuleFormatError(`unknown opcode 0xfc ${hex(sub)}`, this.start);
    }
  }

  private simd(): void {
    const sub = this.u32();
    this.sub = sub;
    this.immStart = this.pos;
    switch (sub < SIMD_LIMIT ? SIMD_KIND[sub] : S_INVALID) {
      case S_NONE:
        return;
      case S_MEMARG:
        this.memarg();
        return;
      case S_BYTES16:
        this.skip(16);
        return;
      case S_LANE:
        this.lane = this.u8();
        return;
      case S_MEMARG_LANE:
        this.memarg();
        this.lane = this.u8();
        return;
      case S_RELAXED:
        throw new UnsupportedFeatureError('relaxed-simd', `instruction 0xfd ${hex(sub)}`, this.start);
      default:
        throw new ModuleFormatError(`unknown opcode 0xfd ${hex(sub)}`, this.start);
    }
  }

  private refuse(op: number): never {
    const [feature, what] = UNSUPPORTED.get(op) ?? ['unknown', 'instruction'];
    let name = hex(op);
    if (op === 0xfb || op === 0xfe) {
      // Name the sub-opcode too when it is readable.
      try {
        name += ` ${hex(this.u32())}`;
      } catch {
        // The prefix alone identifies the feature.
      }
    }
    throw new UnsupportedFeatureError(feature, `${what} ${name}`, this.start);
  }
}

export interface BodyStats {
  /** Instructions, not counting `end` and `else`. */
  instructionCount: number;
  loops: number;
  /** call, call_indirect, return_call and return_call_indirect. */
  calls: number;
  /** Instructions with a function index immediate: call, return_call, ref.func. */
  funcRefs: number;
}

/**
 * Walk the instructions of a function body from `start` to its final `end`,
 * which must be the last byte before `end`. Checks block nesting, collects
 * statistics and leaves feature bits in `reader.features`.
 */
export function scanBody(reader: CodeReader, start: number, end: number): BodyStats {
  reader.reset(start, end);
  reader.what = 'function body';
  let depth = 1;
  let count = 0;
  let loops = 0;
  let calls = 0;
  let funcRefs = 0;
  for (;;) {
    const op = reader.next();
    switch (op) {
      case Op.End:
        if (--depth === 0) {
          if (reader.pos !== end) throw new ModuleFormatError('operators after the end of the function body', reader.pos);
          return { instructionCount: count, loops, calls, funcRefs };
        }
        continue;
      case Op.Else:
        continue;
      case Op.Block:
      case Op.If:
        depth++;
        break;
      case Op.Loop:
        depth++;
        loops++;
        break;
      case Op.Call:
      case Op.ReturnCall:
        calls++;
        funcRefs++;
        break;
      case Op.CallIndirect:
      case Op.ReturnCallIndirect:
        calls++;
        break;
      case Op.RefFunc:
        funcRefs++;
        break;
    }
    count++;
  }
}

/**
 * Walk a constant expression (global initializer, segment offset, element
 * expression) up to and including its `end`. Returns the number of ref.func
 * instructions in it. Only 2.0 constant instructions are accepted;
 * extended-const arithmetic is refused as unsupported.
 */
export function scanConstExpr(reader: CodeReader, start: number, end: number): number {
  reader.reset(start, end);
  reader.what = 'constant expression';
  let funcRefs = 0;
  for (;;) {
    const op = reader.next();
    switch (op) {
      case Op.End:
        return funcRefs;
      case Op.RefFunc:
        funcRefs++;
        continue;
      case Op.I32Const:
      case Op.I64Const:
      case Op.F32Const:
      case Op.F64Const:
      case Op.GlobalGet:
      case Op.RefNull:
        continue;
      case Op.PrefixSimd:
        if (reader.sub === SimdOp.V128Const) continue;
        break;
      case Op.I32Add:
      case Op.I32Sub:
      case Op.I32Mul:
      case Op.I64Add:
      case Op.I64Sub:
      case Op.I64Mul:
        throw new UnsupportedFeatureError('extended-const', `instruction ${hex(op)} in a constant expression`, reader.start);
    }
    const name = reader.sub || op === Op.PrefixMisc ? `${hex(op)} ${hex(reader.sub)}` : hex(op);
    throw new ModuleFormatError(`instruction ${name} is not allowed in a constant expression`, reader.start);
  }
}
