// Values between the spec scripts and WebAssembly, bit-exact. Exported
// functions are called through a small wrapper module that passes f32/f64 as
// their bit patterns (i32/i64) and v128 as two i64, so that NaN payloads
// survive and v128 can cross into JavaScript at all.

import { Writer } from '../../src/runtime/wasm/binary.ts';
import type { FuncType } from '../../src/runtime/wasm/module.ts';
import type { Value } from './script.ts';

const scratch = new DataView(new ArrayBuffer(16));
const externs = new Map<string, object>();

/** The host object standing for extern reference n (one per n, so identity compares). */
export function externObject(n: string): object {
  let o = externs.get(n);
  if (!o) externs.set(n, (o = { extern: n }));
  return o;
}

export class F32Bits {
  readonly bits: number;
  constructor(bits: number) {
    this.bits = bits >>> 0;
  }
}
export class F64Bits {
  readonly bits: bigint;
  constructor(bits: bigint) {
    this.bits = BigInt.asUintN(64, bits);
  }
}
export class V128 {
  readonly lo: bigint;
  readonly hi: bigint;
  constructor(lo: bigint, hi: bigint) {
    this.lo = BigInt.asUintN(64, lo);
    this.hi = BigInt.asUintN(64, hi);
  }
}

const LANE_WIDTH: Record<string, number> = { i8: 1, i16: 2, i32: 4, f32: 4, i64: 8, f64: 8 };

function v128Halves(v: Value): [bigint, bigint] {
  const lanes = v.value as string[];
  const width = LANE_WIDTH[v.lane_type!];
  lanes.forEach((lane, i) => {
    const at = i * width;
    if (width === 1) scratch.setUint8(at, Number(lane));
    else if (width === 2) scratch.setUint16(at, Number(lane), true);
    else if (width === 4) scratch.setUint32(at, Number(lane), true);
    else scratch.setBigUint64(at, BigInt(lane), true);
  });
  return [scratch.getBigInt64(0, true), scratch.getBigInt64(8, true)];
}

/** Arguments of the wrapper for one script value: floats as bits, v128 as two i64. */
export function wrapperArgs(values: readonly Value[]): unknown[] {
  return values.flatMap((v): unknown[] => {
    const s = v.value as string;
    switch (v.type) {
      case 'i32':
      case 'f32':
        return [Number(BigInt.asIntN(32, BigInt(s)))];
      case 'i64':
      case 'f64':
        return [BigInt.asIntN(64, BigInt(s))];
      case 'v128':
        return v128Halves(v);
      case 'externref':
        return [s === 'null' ? null : externObject(s)];
      case 'funcref':
        if (s !== 'null') throw new Error('a non-null funcref argument cannot be made by the host');
        return [null];
      default:
        throw new Error(`unsupported argument type ${v.type}`);
    }
  });
}

/** A result as text, for messages. */
export function describe(x: unknown): string {
  if (x instanceof F32Bits) return `f32:0x${x.bits.toString(16)}`;
  if (x instanceof F64Bits) return `f64:0x${x.bits.toString(16)}`;
  if (x instanceof V128) return `v128:0x${x.hi.toString(16).padStart(16, '0')}${x.lo.toString(16).padStart(16, '0')}`;
  if (typeof x === 'bigint') return `i64:${BigInt.asUintN(64, x)}`;
  if (typeof x === 'number') return Object.is(x, -0) ? '-0' : String(x);
  if (x === null) return 'null';
  if (typeof x === 'function') return 'funcref';
  if (typeof x === 'object' && 'extern' in x) return `ref.extern ${(x as { extern: string }).extern}`;
  return `${typeof x}`;
}

function f32Matches(expected: string, bits: number): boolean {
  if (expected === 'nan:canonical') return (bits & 0x7fffffff) === 0x7fc00000;
  if (expected === 'nan:arithmetic') return (bits & 0x7fc00000) === 0x7fc00000;
  return bits === Number(expected);
}

function f64Matches(expected: string, bits: bigint): boolean {
  if (expected === 'nan:canonical') return (bits & 0x7fffffffffffffffn) === 0x7ff8000000000000n;
  if (expected === 'nan:arithmetic') return (bits & 0x7ff8000000000000n) === 0x7ff8000000000000n;
  return bits === BigInt(expected);
}

/** Does one result match the script's expected value? */
export function matches(exp: Value, actual: unknown): boolean {
  const s = exp.value as string;
  switch (exp.type) {
    case 'i32':
      return typeof actual === 'number' && actual >>> 0 === Number(s);
    case 'i64':
      return typeof actual === 'bigint' && BigInt.asUintN(64, actual) === BigInt(s);
    case 'f32':
      if (actual instanceof F32Bits) return f32Matches(s, actual.bits);
      if (typeof actual !== 'number') return false;
      scratch.setFloat32(0, actual, true);
      return s.startsWith('nan') ? Number.isNaN(actual) : scratch.getUint32(0, true) === Number(s);
    case 'f64':
      if (actual instanceof F64Bits) return f64Matches(s, actual.bits);
      if (typeof actual !== 'number') return false;
      scratch.setFloat64(0, actual, true);
      return s.startsWith('nan') ? Number.isNaN(actual) : scratch.getBigUint64(0, true) === BigInt(s);
    case 'externref':
      return s === 'null' ? actual === null : actual === externObject(s);
    case 'funcref':
      return s === 'null' ? actual === null : typeof actual === 'function';
    case 'v128': {
      if (!(actual instanceof V128)) return false;
      scratch.setBigUint64(0, actual.lo, true);
      scratch.setBigUint64(8, actual.hi, true);
      return (exp.value as string[]).every((lane, i) => {
        switch (exp.lane_type) {
          case 'i8':
            return scratch.getUint8(i) === Number(lane);
          case 'i16':
            return scratch.getUint16(i * 2, true) === Number(lane);
          case 'i32':
            return scratch.getUint32(i * 4, true) === Number(lane);
          case 'f32':
            return f32Matches(lane, scratch.getUint32(i * 4, true));
          case 'i64':
            return scratch.getBigUint64(i * 8, true) === BigInt(lane);
          case 'f64':
            return f64Matches(lane, scratch.getBigUint64(i * 8, true));
          default:
            return false;
        }
      });
    }
    default:
      return false;
  }
}

const TYPE_CODES: Record<string, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70, externref: 0x6f };
const WRAPPED: Record<string, string[]> = { f32: ['i32'], f64: ['i64'], v128: ['i64', 'i64'] };

function section(out: Writer, id: number, content: () => void): void {
  out.u8(id);
  const m = out.beginSize();
  content();
  out.endSize(m);
}

/** A module importing a function of signature `sig` as m.f and exporting "w", its JS-friendly twin. */
function wrapperModule(sig: FuncType): Uint8Array<ArrayBuffer> {
  const wrapParams = sig.params.flatMap((t) => WRAPPED[t] ?? [t]);
  const wrapResults = sig.results.flatMap((t) => WRAPPED[t] ?? [t]);
  const w = new Writer();
  w.bytes(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0));
  const functype = (params: string[], results: string[]) => {
    w.u8(0x60);
    w.u32(params.length);
    for (const p of params) w.u8(TYPE_CODES[p]);
    w.u32(results.length);
    for (const r of results) w.u8(TYPE_CODES[r]);
  };
  section(w, 1, () => {
    w.u32(2);
    functype(sig.params, sig.results);
    functype(wrapParams, wrapResults);
  });
  section(w, 2, () => {
    w.u32(1);
    w.name('m');
    w.name('f');
    w.u8(0);
    w.u32(0);
  });
  section(w, 3, () => {
    w.u32(1);
    w.u32(1);
  });
  section(w, 7, () => {
    w.u32(1);
    w.name('w');
    w.u8(0);
    w.u32(1);
  });
  section(w, 10, () => {
    w.u32(1);
    const m = w.beginSize();
    // One local per original result, to take them apart in order.
    w.u32(sig.results.length);
    for (const r of sig.results) {
      w.u32(1);
      w.u8(TYPE_CODES[r]);
    }
    const get = (i: number) => {
      w.u8(0x20);
      w.u32(i);
    };
    let p = 0;
    for (const t of sig.params) {
      get(p++);
      if (t === 'f32') w.u8(0xbe); // f32.reinterpret_i32
      else if (t === 'f64') w.u8(0xbf); // f64.reinterpret_i64
      else if (t === 'v128') {
        w.bytes(Uint8Array.of(0xfd, 0x12)); // i64x2.splat
        get(p++);
        w.bytes(Uint8Array.of(0xfd, 0x1e, 1)); // i64x2.replace_lane 1
      }
    }
    w.bytes(Uint8Array.of(0x10, 0));
    const firstLocal = wrapParams.length;
    for (let i = sig.results.length - 1; i >= 0; i--) {
      w.u8(0x21);
      w.u32(firstLocal + i);
    }
    sig.results.forEach((t, i) => {
      get(firstLocal + i);
      if (t === 'f32') w.u8(0xbc); // i32.reinterpret_f32
      else if (t === 'f64') w.u8(0xbd); // i64.reinterpret_f64
      else if (t === 'v128') {
        w.bytes(Uint8Array.of(0xfd, 0x1d, 0)); // i64x2.extract_lane 0
        get(firstLocal + i);
        w.bytes(Uint8Array.of(0xfd, 0x1d, 1));
      }
    });
    w.u8(0x0b);
    w.endSize(m);
  });
  return w.finish();
}

const wrapperModules = new Map<string, WebAssembly.Module>();
const wrappers = new WeakMap<object, (...a: unknown[]) => unknown>();

/** Call an exported function with wrapper arguments (see wrapperArgs); returns the wrapper's raw result. */
export function callWrapped(fn: (...a: unknown[]) => unknown, sig: FuncType, args: readonly unknown[]): unknown {
  let wrapper = wrappers.get(fn);
  if (!wrapper) {
    const key = JSON.stringify(sig);
    let mod = wrapperModules.get(key);
    if (!mod) wrapperModules.set(key, (mod = new WebAssembly.Module(wrapperModule(sig))));
    wrapper = new WebAssembly.Instance(mod, { m: { f: fn } }).exports.w as (...a: unknown[]) => unknown;
    wrappers.set(fn, wrapper);
  }
  return wrapper(...args);
}

/** The results of a call from the wrapper's raw result. */
export function unwrapResults(sig: FuncType, raw: unknown): unknown[] {
  const flat = sig.results.length === 0 ? [] : Array.isArray(raw) ? raw : [raw];
  const out: unknown[] = [];
  let k = 0;
  for (const t of sig.results) {
    if (t === 'f32') out.push(new F32Bits(flat[k++] as number));
    else if (t === 'f64') out.push(new F64Bits(flat[k++] as bigint));
    else if (t === 'v128') {
      out.push(new V128(flat[k] as bigint, flat[k + 1] as bigint));
      k += 2;
    } else out.push(flat[k++]);
  }
  return out;
}
