// Behavioural check of the fuel rewrite against the WebAssembly spec suite:
// every script runs three times (plain, fuel with a budget of 3 so that tick
// runs at almost every check, fuel with a large budget), and every command
// must have the same outcome in all three. The plain run is also checked
// against the script's expectations, which keeps the runner honest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFuel } from './fuel.ts';
import { FUEL_EXPORT } from './names.ts';
import { parseModule, type FuncType, type ModuleInfo } from '../wasm/module.ts';
import { Writer } from '../wasm/binary.ts';

const SPEC_DIR = '/work/shared/wasm-spec-tests/json';

interface Value {
  type: string;
  value?: string | string[] | null;
  lane_type?: string;
}
interface Action {
  type: 'invoke' | 'get';
  module?: string;
  field: string;
  args?: Value[];
}
interface Command {
  type: string;
  line: number;
  filename?: string;
  name?: string;
  as?: string;
  module_type?: string;
  action?: Action;
  expected?: Value[];
  text?: string;
}

// ---- value conversion ----
//
// Exports are called through a small wrapper module that passes f32/f64 as
// their bit patterns (i32/i64) and v128 as two i64, so NaN payloads survive
// and v128 can cross into JS at all.

const scratch = new DataView(new ArrayBuffer(16));
const externs = new Map<string, object>();
function externObject(n: string): object {
  let o = externs.get(n);
  if (!o) externs.set(n, (o = { extern: n }));
  return o;
}

class F32Bits {
  readonly bits: number;
  constructor(bits: number) {
    this.bits = bits >>> 0;
  }
}
class F64Bits {
  readonly bits: bigint;
  constructor(bits: bigint) {
    this.bits = BigInt.asUintN(64, bits);
  }
}
class V128 {
  readonly lo: bigint;
  readonly hi: bigint;
  constructor(lo: bigint, hi: bigint) {
    this.lo = BigInt.asUintN(64, lo);
    this.hi = BigInt.asUintN(64, hi);
  }
}

function v128Halves(v: Value): [bigint, bigint] {
  const lanes = v.value as string[];
  const width = { i8: 1, i16: 2, i32: 4, f32: 4, i64: 8, f64: 8 }[v.lane_type!]!;
  lanes.forEach((lane, i) => {
    const at = i * width;
    if (width === 1) scratch.setUint8(at, Number(lane));
    else if (width === 2) scratch.setUint16(at, Number(lane), true);
    else if (width === 4) scratch.setUint32(at, Number(lane), true);
    else scratch.setBigUint64(at, BigInt(lane), true);
  });
  return [scratch.getBigInt64(0, true), scratch.getBigInt64(8, true)];
}

/** JS argument(s) for the wrapper: floats as bits, v128 as two i64. */
function toWrapperArgs(v: Value): unknown[] {
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
      return [null];
    default:
      throw new Error(`unsupported argument type ${v.type}`);
  }
}

/** A result as a string that is equal for equal results (bit-exact). */
function encode(x: unknown): string {
  if (x instanceof F32Bits) return `f32:${x.bits}`;
  if (x instanceof F64Bits) return `f64:${x.bits}`;
  if (x instanceof V128) return `v128:${x.lo}:${x.hi}`;
  if (typeof x === 'bigint') return `${BigInt.asUintN(64, x)}n`;
  if (typeof x === 'number') return Object.is(x, -0) ? '-0' : String(x);
  if (x === null) return 'null';
  if (typeof x === 'function') return 'func';
  if (typeof x === 'object' && 'extern' in x) return `ref:${(x as { extern: string }).extern}`;
  return `?${typeof x}`;
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
function matches(exp: Value, actual: unknown): boolean {
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

function sectionOf(out: Writer, id: number, content: () => void): void {
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
  sectionOf(w, 1, () => {
    w.u32(2);
    functype(sig.params, sig.results);
    functype(wrapParams, wrapResults);
  });
  sectionOf(w, 2, () => {
    w.u32(1);
    w.name('m');
    w.name('f');
    w.u8(0);
    w.u32(0);
  });
  sectionOf(w, 3, () => {
    w.u32(1);
    w.u32(1);
  });
  sectionOf(w, 7, () => {
    w.u32(1);
    w.name('w');
    w.u8(0);
    w.u32(1);
  });
  sectionOf(w, 10, () => {
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

function callExport(inst: Instance, field: string, args: Value[]): unknown[] {
  const fn = inst.instance.exports[field] as (...a: unknown[]) => unknown;
  if (typeof fn !== 'function') throw new Error(`no exported function ${field}`);
  const exp = inst.info.exports.find((e) => e.name === field && e.kind === 'func');
  if (!exp) throw new Error(`no exported function ${field}`);
  const sig = inst.info.functionSignature(exp.index);
  let wrapper = wrappers.get(fn);
  if (!wrapper) {
    const key = JSON.stringify(sig);
    let mod = wrapperModules.get(key);
    if (!mod) wrapperModules.set(key, (mod = new WebAssembly.Module(wrapperModule(sig))));
    wrapper = new WebAssembly.Instance(mod, { m: { f: fn } }).exports.w as (...a: unknown[]) => unknown;
    wrappers.set(fn, wrapper);
  }
  const raw = wrapper(...args.flatMap(toWrapperArgs));
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

// ---- script runner ----

interface Instance {
  instance: WebAssembly.Instance;
  info: ModuleInfo;
}

interface Variant {
  label: string;
  /** Fuel budget returned by tick; undefined: run the plain module. */
  budget?: number;
  ticks: number;
  /** Tick found the exported fuel global non-negative (contract violation). */
  badTicks: number;
  registry: Record<string, WebAssembly.ModuleImports>;
  named: Map<string, Instance>;
  current?: Instance;
}

function spectest(): WebAssembly.ModuleImports {
  const print = () => {};
  return {
    print,
    print_i32: print,
    print_i64: print,
    print_f32: print,
    print_f64: print,
    print_i32_f32: print,
    print_f64_f64: print,
    global_i32: new WebAssembly.Global({ value: 'i32', mutable: false }, 666),
    global_i64: new WebAssembly.Global({ value: 'i64', mutable: false }, 666n),
    global_f32: new WebAssembly.Global({ value: 'f32', mutable: false }, 666.6),
    global_f64: new WebAssembly.Global({ value: 'f64', mutable: false }, 666.6),
    table: new WebAssembly.Table({ initial: 10, maximum: 20, element: 'anyfunc' }),
    memory: new WebAssembly.Memory({ initial: 1, maximum: 2 }),
  };
}

function errorOutcome(e: unknown): string {
  if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
  if (e instanceof RangeError) return 'exhaustion';
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}`;
  return `throw: ${String(e)}`;
}

function instantiate(v: Variant, original: Uint8Array<ArrayBuffer>): Instance {
  const info = parseModule(original);
  const fuel = v.budget !== undefined;
  const bytes = fuel ? addFuel(original, info) : original;
  const imports: WebAssembly.Imports = { spectest: v.registry.spectest, ...v.registry };
  // Filled in after instantiation (a start function ticks before that).
  const made: { instance?: WebAssembly.Instance } = {};
  if (fuel) {
    const budget = v.budget!;
    imports.gate_engine = {
      tick: () => {
        v.ticks++;
        const g = made.instance?.exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
        if (g && (g.value as number) >= 0) v.badTicks++;
        return budget;
      },
    };
  }
  made.instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  return { instance: made.instance, info };
}

function runAction(v: Variant, action: Action): { outcome: string; values?: unknown[] } {
  const inst = action.module ? v.named.get(action.module) : v.current;
  if (!inst) return { outcome: 'no module' };
  try {
    if (action.type === 'get') {
      const g = inst.instance.exports[action.field] as WebAssembly.Global;
      const values = [g.value];
      return { outcome: values.map(encode).join(','), values };
    }
    const values = callExport(inst, action.field, action.args ?? []);
    return { outcome: values.map(encode).join(','), values };
  } catch (e) {
    return { outcome: errorOutcome(e) };
  }
}

interface Tally {
  commands: number;
  skipped: number;
  expectedMismatches: string[];
}

/** Run one command; returns its outcome as a comparable string. */
function runCommand(v: Variant, c: Command, tally: Tally | undefined): string {
  switch (c.type) {
    case 'module': {
      if (c.module_type === 'text' || !c.filename) return 'skipped';
      const bytes = new Uint8Array(readFileSync(join(SPEC_DIR, c.filename)));
      if (!WebAssembly.validate(bytes)) {
        // Nothing to instrument; the engine refuses such modules.
        v.current = undefined;
        return 'invalid';
      }
      try {
        const inst = instantiate(v, bytes);
        v.current = inst;
        if (c.name) v.named.set(c.name, inst);
        return 'ok';
      } catch (e) {
        v.current = undefined;
        return errorOutcome(e);
      }
    }
    case 'register': {
      const inst = c.name ? v.named.get(c.name) : v.current;
      if (inst && c.as) v.registry[c.as] = inst.instance.exports as WebAssembly.ModuleImports;
      return 'ok';
    }
    case 'assert_unlinkable':
    case 'assert_uninstantiable': {
      if (c.module_type === 'text' || !c.filename) return 'skipped';
      const bytes = new Uint8Array(readFileSync(join(SPEC_DIR, c.filename)));
      let outcome: string;
      if (!WebAssembly.validate(bytes)) outcome = 'invalid';
      else {
        try {
          instantiate(v, bytes);
          outcome = 'ok';
        } catch (e) {
          outcome = e instanceof WebAssembly.RuntimeError || e instanceof WebAssembly.LinkError ? 'refused' : errorOutcome(e);
        }
      }
      if (tally && outcome !== 'refused') tally.expectedMismatches.push(`line ${c.line} ${c.type}: ${outcome}`);
      return outcome;
    }
    case 'action':
    case 'assert_return':
    case 'assert_trap':
    case 'assert_exhaustion': {
      const { outcome, values } = runAction(v, c.action!);
      if (tally) {
        tally.commands++;
        let ok: boolean;
        if (c.type === 'assert_return') ok = values !== undefined && values.length === c.expected!.length && c.expected!.every((e, i) => matches(e, values[i]));
        else if (c.type === 'assert_trap') ok = outcome.startsWith('trap');
        else if (c.type === 'assert_exhaustion') ok = outcome === 'exhaustion';
        else ok = values !== undefined;
        if (!ok) tally.expectedMismatches.push(`line ${c.line} ${c.type} ${c.action!.field}: ${outcome}`);
      }
      return outcome;
    }
    default:
      // assert_invalid / assert_malformed are the parser tests' business.
      if (tally) tally.skipped++;
      return 'skipped';
  }
}

function newVariant(label: string, budget?: number): Variant {
  return { label, budget, ticks: 0, badTicks: 0, registry: { spectest: spectest() }, named: new Map() };
}

const present = existsSync(SPEC_DIR);
const scripts = present
  ? readdirSync(SPEC_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];

test('fuel-instrumented spec scripts behave like the plain ones', { skip: present ? false : `spec suite not found at ${SPEC_DIR}` }, () => {
  const started = performance.now();
  let commands = 0;
  let ticksSmall = 0;
  let ticksLarge = 0;
  const mismatches: string[] = [];
  const expectedMismatches: string[] = [];
  for (const script of scripts) {
    const { commands: list } = JSON.parse(readFileSync(join(SPEC_DIR, script), 'utf8')) as { commands: Command[] };
    const plain = newVariant('plain');
    const small = newVariant('fuel 3', 3);
    const large = newVariant('fuel 1e6', 1_000_000);
    const tally: Tally = { commands: 0, skipped: 0, expectedMismatches: [] };
    for (const c of list) {
      const a = runCommand(plain, c, tally);
      const b = runCommand(small, c, undefined);
      const d = runCommand(large, c, undefined);
      if (a !== b || a !== d) mismatches.push(`${script}:${c.line} ${c.type}: plain ${a} | fuel(3) ${b} | fuel(1e6) ${d}`);
    }
    for (const v of [small, large]) {
      if (v.badTicks) mismatches.push(`${script}: tick called ${v.badTicks} times while the fuel global was not negative (${v.label})`);
    }
    commands += tally.commands;
    ticksSmall += small.ticks;
    ticksLarge += large.ticks;
    expectedMismatches.push(...tally.expectedMismatches.map((m) => `${script} ${m}`));
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `spec behaviour: ${scripts.length} scripts, ${commands} invoke/get commands x3 in ${seconds} s; ` +
      `ticks ${ticksSmall} (budget 3), ${ticksLarge} (budget 1e6); ` +
      `${expectedMismatches.length} plain results differ from the script's expectation`,
  );
  for (const m of expectedMismatches.slice(0, 20)) console.log(`  expectation: ${m}`);
  assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} commands behave differently with fuel`);
  assert.ok(ticksSmall > ticksLarge);
});
