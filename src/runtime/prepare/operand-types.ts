// The operand types an instruction pops and pushes, for every instruction
// whose effect does not depend on its immediates or on the module (those the
// rewrite works out itself: control, calls, locals, globals, select, tables,
// ref.null). The rewrite tracks the operand stack through a function so that
// it knows, at every point where the program may be suspended, which values
// are live and of which types.

/** Value type codes, as in the binary. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export const FUNCREF = 0x70;
export const EXTERNREF = 0x6f;
/** An operand of unknown type (popped from the polymorphic stack of unreachable code). */
export const UNKNOWN = 0;

export interface Effect {
  pops: readonly number[];
  pushes: readonly number[];
}

const none: readonly number[] = [];

function effect(pops: readonly number[], pushes: readonly number[]): Effect {
  return { pops, pushes };
}

/** Effects of single-byte opcodes (undefined: not fixed). */
export const SINGLE: (Effect | undefined)[] = new Array(256);
/** Effects of 0xFC sub-opcodes. */
export const MISC: (Effect | undefined)[] = new Array(32);
/** Effects of 0xFD sub-opcodes. */
export const SIMD: (Effect | undefined)[] = new Array(0x100);

function range(table: (Effect | undefined)[], from: number, to: number, e: Effect): void {
  for (let op = from; op <= to; op++) table[op] = e;
}

// Loads: address -> value.
const loads: [number, number][] = [
  [0x28, I32], [0x29, I64], [0x2a, F32], [0x2b, F64],
  [0x2c, I32], [0x2d, I32], [0x2e, I32], [0x2f, I32],
  [0x30, I64], [0x31, I64], [0x32, I64], [0x33, I64], [0x34, I64], [0x35, I64],
];
for (const [op, t] of loads) SINGLE[op] = effect([I32], [t]);
// Stores: address, value ->.
const stores: [number, number][] = [
  [0x36, I32], [0x37, I64], [0x38, F32], [0x39, F64], [0x3a, I32], [0x3b, I32], [0x3c, I64], [0x3d, I64], [0x3e, I64],
];
for (const [op, t] of stores) SINGLE[op] = effect([I32, t], none);
SINGLE[0x3f] = effect(none, [I32]); // memory.size
SINGLE[0x40] = effect([I32], [I32]); // memory.grow
SINGLE[0x41] = effect(none, [I32]);
SINGLE[0x42] = effect(none, [I64]);
SINGLE[0x43] = effect(none, [F32]);
SINGLE[0x44] = effect(none, [F64]);

const unary = (t: number, r = t): Effect => effect([t], [r]);
const binary = (t: number, r = t): Effect => effect([t, t], [r]);
SINGLE[0x45] = unary(I32, I32);
range(SINGLE, 0x46, 0x4f, binary(I32, I32));
SINGLE[0x50] = unary(I64, I32);
range(SINGLE, 0x51, 0x5a, binary(I64, I32));
range(SINGLE, 0x5b, 0x60, binary(F32, I32));
range(SINGLE, 0x61, 0x66, binary(F64, I32));
range(SINGLE, 0x67, 0x69, unary(I32));
range(SINGLE, 0x6a, 0x78, binary(I32));
range(SINGLE, 0x79, 0x7b, unary(I64));
range(SINGLE, 0x7c, 0x8a, binary(I64));
range(SINGLE, 0x8b, 0x91, unary(F32));
range(SINGLE, 0x92, 0x98, binary(F32));
range(SINGLE, 0x99, 0x9f, unary(F64));
range(SINGLE, 0xa0, 0xa6, binary(F64));
SINGLE[0xa7] = unary(I64, I32);
range(SINGLE, 0xa8, 0xa9, unary(F32, I32));
range(SINGLE, 0xaa, 0xab, unary(F64, I32));
range(SINGLE, 0xac, 0xad, unary(I32, I64));
range(SINGLE, 0xae, 0xaf, unary(F32, I64));
range(SINGLE, 0xb0, 0xb1, unary(F64, I64));
range(SINGLE, 0xb2, 0xb3, unary(I32, F32));
range(SINGLE, 0xb4, 0xb5, unary(I64, F32));
SINGLE[0xb6] = unary(F64, F32);
range(SINGLE, 0xb7, 0xb8, unary(I32, F64));
range(SINGLE, 0xb9, 0xba, unary(I64, F64));
SINGLE[0xbb] = unary(F32, F64);
SINGLE[0xbc] = unary(F32, I32);
SINGLE[0xbd] = unary(F64, I64);
SINGLE[0xbe] = unary(I32, F32);
SINGLE[0xbf] = unary(I64, F64);
range(SINGLE, 0xc0, 0xc1, unary(I32));
range(SINGLE, 0xc2, 0xc4, unary(I64));
SINGLE[0x01] = effect(none, none); // nop

// 0xFC: saturating truncations, bulk memory, tables.
MISC[0] = unary(F32, I32);
MISC[1] = unary(F32, I32);
MISC[2] = unary(F64, I32);
MISC[3] = unary(F64, I32);
MISC[4] = unary(F32, I64);
MISC[5] = unary(F32, I64);
MISC[6] = unary(F64, I64);
MISC[7] = unary(F64, I64);
MISC[8] = effect([I32, I32, I32], none); // memory.init
MISC[9] = effect(none, none); // data.drop
MISC[10] = effect([I32, I32, I32], none); // memory.copy
MISC[11] = effect([I32, I32, I32], none); // memory.fill
MISC[12] = effect([I32, I32, I32], none); // table.init
MISC[13] = effect(none, none); // elem.drop
MISC[14] = effect([I32, I32, I32], none); // table.copy
MISC[16] = effect(none, [I32]); // table.size
// table.grow and table.fill depend on the table's element type.

// 0xFD: fixed-width SIMD.
const vUnary = unary(V128);
const vBinary = binary(V128);
const vShift = effect([V128, I32], [V128]);
const vTest = unary(V128, I32);
const vLoad = effect([I32], [V128]);
range(SIMD, 0x00, 0x0a, vLoad);
SIMD[0x0b] = effect([I32, V128], none);
SIMD[0x0c] = effect(none, [V128]);
SIMD[0x0d] = vBinary; // shuffle
SIMD[0x0e] = vBinary; // swizzle
SIMD[0x0f] = unary(I32, V128);
SIMD[0x10] = unary(I32, V128);
SIMD[0x11] = unary(I32, V128);
SIMD[0x12] = unary(I64, V128);
SIMD[0x13] = unary(F32, V128);
SIMD[0x14] = unary(F64, V128);
SIMD[0x15] = unary(V128, I32);
SIMD[0x16] = unary(V128, I32);
SIMD[0x17] = effect([V128, I32], [V128]);
SIMD[0x18] = unary(V128, I32);
SIMD[0x19] = unary(V128, I32);
SIMD[0x1a] = effect([V128, I32], [V128]);
SIMD[0x1b] = unary(V128, I32);
SIMD[0x1c] = effect([V128, I32], [V128]);
SIMD[0x1d] = unary(V128, I64);
SIMD[0x1e] = effect([V128, I64], [V128]);
SIMD[0x1f] = unary(V128, F32);
SIMD[0x20] = effect([V128, F32], [V128]);
SIMD[0x21] = unary(V128, F64);
SIMD[0x22] = effect([V128, F64], [V128]);
range(SIMD, 0x23, 0x4c, vBinary); // comparisons
SIMD[0x4d] = vUnary; // not
range(SIMD, 0x4e, 0x51, vBinary); // and, andnot, or, xor
SIMD[0x52] = effect([V128, V128, V128], [V128]); // bitselect
SIMD[0x53] = vTest; // any_true
range(SIMD, 0x54, 0x57, effect([I32, V128], [V128])); // load_lane
range(SIMD, 0x58, 0x5b, effect([I32, V128], none)); // store_lane
SIMD[0x5c] = vLoad;
SIMD[0x5d] = vLoad;
SIMD[0x5e] = vUnary;
SIMD[0x5f] = vUnary;
// Per-shape integer groups at 0x60 (i8x16), 0x80 (i16x8), 0xa0 (i32x4), 0xc0 (i64x2).
const shapeOps: [number, Effect][] = [];
for (let op = 0x60; op <= 0xdf; op++) shapeOps.push([op, vBinary]);
for (const [op, e] of shapeOps) SIMD[op] = e;
for (const op of [0x60, 0x61, 0x62, 0x67, 0x68, 0x69, 0x6a, 0x74, 0x75, 0x7a, 0x7c, 0x7d, 0x7e, 0x7f]) SIMD[op] = vUnary;
for (const op of [0x80, 0x81, 0x87, 0x88, 0x89, 0x8a, 0x94]) SIMD[op] = vUnary;
for (const op of [0xa0, 0xa1, 0xa7, 0xa8, 0xa9, 0xaa]) SIMD[op] = vUnary;
for (const op of [0xc0, 0xc1, 0xc7, 0xc8, 0xc9, 0xca]) SIMD[op] = vUnary;
for (const op of [0x63, 0x64, 0x83, 0x84, 0xa3, 0xa4, 0xc3, 0xc4]) SIMD[op] = vTest; // all_true, bitmask
for (const op of [0x6b, 0x6c, 0x6d, 0x8b, 0x8c, 0x8d, 0xab, 0xac, 0xad, 0xcb, 0xcc, 0xcd]) SIMD[op] = vShift;
// Floating-point groups.
range(SIMD, 0xe0, 0xff, vBinary);
for (const op of [0xe0, 0xe1, 0xe3, 0xec, 0xed, 0xef]) SIMD[op] = vUnary;
range(SIMD, 0xf8, 0xff, vUnary); // conversions
// Unassigned opcodes (the decoder refuses them first).
for (const op of [0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee]) {
  SIMD[op] = undefined;
}

/** Size in 8-byte stack words of a saved value of this type. */
export function slotWords(type: number): number {
  return type === V128 ? 2 : 1;
}

/** Value type code of a ValType name. */
export function typeCode(name: string): number {
  switch (name) {
    case 'i32':
      return I32;
    case 'i64':
      return I64;
    case 'f32':
      return F32;
    case 'f64':
      return F64;
    case 'v128':
      return V128;
    case 'funcref':
      return FUNCREF;
    case 'externref':
      return EXTERNREF;
    default:
      throw new Error(`unknown value type ${name}`);
  }
}
