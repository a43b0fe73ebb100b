// Feature families beyond the MVP that a module may use, and the value-type
// codes that select them. Anything outside WebAssembly 2.0 (+ tail calls and
// multi-memory) is refused with UnsupportedFeatureError; preparation then
// refuses those two as well, naming them (a snapshot holds one memory, and a
// suspended stack has no place for a tail call).

import { Reader, ModuleFormatError, UnsupportedFeatureError, hex } from './binary.ts';

export type FeatureName =
  | 'sign-ext'
  | 'sat-float-to-int'
  | 'bulk-memory'
  | 'reference-types'
  | 'multi-value'
  | 'simd'
  | 'tail-call'
  | 'multi-memory'
  | 'mutable-globals';

/** Bit masks of the supported feature families. */
export const Feature = {
  SignExt: 1 << 0,
  SatFloatToInt: 1 << 1,
  BulkMemory: 1 << 2,
  ReferenceTypes: 1 << 3,
  MultiValue: 1 << 4,
  Simd: 1 << 5,
  TailCall: 1 << 6,
  MultiMemory: 1 << 7,
  MutableGlobals: 1 << 8,
} as const;

const NAMES: readonly FeatureName[] = [
  'sign-ext',
  'sat-float-to-int',
  'bulk-memory',
  'reference-types',
  'multi-value',
  'simd',
  'tail-call',
  'multi-memory',
  'mutable-globals',
];

export function featureNames(mask: number): FeatureName[] {
  const out: FeatureName[] = [];
  for (let i = 0; i < NAMES.length; i++) if (mask & (1 << i)) out.push(NAMES[i]);
  return out;
}

export type NumType = 'i32' | 'i64' | 'f32' | 'f64';
export type RefType = 'funcref' | 'externref';
export type ValType = NumType | 'v128' | RefType;

export function valTypeName(code: number): ValType {
  switch (code) {
    case 0x7f:
      return 'i32';
    case 0x7e:
      return 'i64';
    case 0x7d:
      return 'f32';
    case 0x7c:
      return 'f64';
    case 0x7b:
      return 'v128';
    case 0x70:
      return 'funcref';
    default:
      return 'externref';
  }
}

/** Feature bits implied by using a value type (outside table element types). */
export function valTypeFeatures(code: number): number {
  if (code === 0x7b) return Feature.Simd;
  if (code === 0x70 || code === 0x6f) return Feature.ReferenceTypes;
  return 0;
}

/** Name the proposal of a type code that 2.0 lacks, or undefined if the code is no type at all. */
function unsupportedTypeFeature(code: number): string | undefined {
  switch (code) {
    case 0x64: // (ref ht)
    case 0x63: // (ref null ht)
      return 'function-references';
    case 0x6e: // anyref
    case 0x6d: // eqref
    case 0x6c: // i31ref
    case 0x6b: // structref
    case 0x6a: // arrayref
    case 0x71: // nullref
    case 0x72: // nullexternref
    case 0x73: // nullfuncref
      return 'gc';
    case 0x69: // exnref
    case 0x74: // nullexnref
      return 'exception-handling';
    case 0x68: // contref
    case 0x75: // nullcontref
      return 'stack-switching';
    default:
      return undefined;
  }
}

export function refuseTypeCode(code: number, at: number, what = 'value type'): never {
  const feature = unsupportedTypeFeature(code);
  if (feature !== undefined) throw new UnsupportedFeatureError(feature, `${what} ${hex(code)}`, at);
  throw new ModuleFormatError(`invalid ${what} ${hex(code)}`, at);
}

/** Read a value type code (single byte in 2.0). */
export function readValType(r: Reader): number {
  const at = r.pos;
  const code = r.u8();
  if ((code >= 0x7b && code <= 0x7f) || code === 0x70 || code === 0x6f) return code;
  return refuseTypeCode(code, at);
}

/** Read a reference type code (table and element types). */
export function readRefType(r: Reader): number {
  const at = r.pos;
  const code = r.u8();
  if (code === 0x70 || code === 0x6f) return code;
  return refuseTypeCode(code, at, 'reference type');
}

/** Heap type of ref.null: funcref or externref abbreviations only. */
export function readHeapType(r: Reader): number {
  const at = r.pos;
  const code = r.u8();
  if (code === 0x70 || code === 0x6f) return code;
  // Non-negative s33 values are type indices: typed function references.
  if (code < 0x40 || code >= 0x80) throw new UnsupportedFeatureError('function-references', 'typed heap type', at);
  return refuseTypeCode(code, at, 'heap type');
}
