// Loop versioning: loops whose trip count is known when they start, but not
// when the program is prepared (`for (j = 0; j < n; j++)` with n a local).
// At the loop's entry, its number of iterations is computed from the counter's
// value, its step and its bound; when that is known and the fuel covers all
// of them, they are charged at once and an unchecked copy of the loop runs,
// otherwise the loop with its fuel check. The unchecked copy exits on its
// counter alone, which V8 unrolls and runs without an interrupt check (the
// reason counted loops exist, counted-loop.ts); its work is paid before it
// starts, so the preemption guarantee holds as for any charge.
//
// The copy holds no suspension point (the loop is innermost and calls
// nothing), so no frame is ever saved inside it: a stack saved at the loop's
// check names the checked loop, and a rewind (fuel set to -1) always fails
// the entry test and goes there.

import type { Writer } from '../wasm/binary.ts';
import { CodeReader, Op } from '../wasm/instructions.ts';
import { I32_EQ, I32_GE_S, I32_GE_U, I32_GT_S, I32_GT_U, I32_LE_S, I32_LE_U, I32_LT_S, I32_LT_U, I32_NE, scanLoop, steps, type Recent } from './counted-loop.ts';

export interface VersionedLoop {
  counter: number;
  /** The counter's step, not 0. */
  step: number;
  /** The test reads the counter after its step. */
  after: boolean;
  /** The loop goes on while `counter rel bound` (an i32 comparison opcode): lt/le going up, gt/ge going down, or ne. */
  rel: number;
  /** The bound: a local the loop does not write, or a constant. */
  boundLocal: number;
  boundValue: number;
}

const I32_EQZ = 0x45;

/** rel with its operands swapped. */
const SWAPPED: Record<number, number> = {
  [I32_EQ]: I32_EQ,
  [I32_NE]: I32_NE,
  [I32_LT_S]: I32_GT_S,
  [I32_LT_U]: I32_GT_U,
  [I32_GT_S]: I32_LT_S,
  [I32_GT_U]: I32_LT_U,
  [I32_LE_S]: I32_GE_S,
  [I32_LE_U]: I32_GE_U,
  [I32_GE_S]: I32_LE_S,
  [I32_GE_U]: I32_LE_U,
};

/** The negation of rel. */
const NEGATED: Record<number, number> = {
  [I32_EQ]: I32_NE,
  [I32_NE]: I32_EQ,
  [I32_LT_S]: I32_GE_S,
  [I32_LT_U]: I32_GE_U,
  [I32_GT_S]: I32_LE_S,
  [I32_GT_U]: I32_LE_U,
  [I32_LE_S]: I32_GT_S,
  [I32_LE_U]: I32_GT_U,
  [I32_GE_S]: I32_LT_S,
  [I32_GE_U]: I32_LT_U,
};

const UNSIGNED = new Set([I32_LT_U, I32_LE_U, I32_GT_U, I32_GE_U]);
const UP = new Set([I32_LT_S, I32_LT_U, I32_LE_S, I32_LE_U]);
const DOWN = new Set([I32_GT_S, I32_GT_U, I32_GE_S, I32_GE_U]);

interface Operand {
  /** Index of its first instruction in the level. */
  start: number;
  counter: boolean;
  after: boolean;
  local: number;
  value: number;
}

/**
 * The loop whose body starts at `start` (just after its `loop` and empty
 * block type), if it can be versioned: innermost, calling nothing, one back
 * edge at its end (scanLoop), a counter stepped once by a constant (steps),
 * and a test of the counter against a constant or a local the loop does not
 * write, at the loop's own level: the last `br_if 0`, or when the loop ends
 * with `br 0`, a `br_if` out of it, and no other way out (no other branch out
 * of the loop, no return).
 */
export function versionedLoop(reader: CodeReader, start: number, end: number): VersionedLoop | null {
  const scan = scanLoop(reader, start, end);
  if (!scan || !scan.copyable) return null;
  const { level, writes } = scan;
  const last = level.length - 1;
  for (const { counter, step, stepEnd } of steps(scan)) {
    if (step === 0) continue;
    // The expression of one value ending at level[k].
    const operand = (k: number): Operand | null => {
      if (k < 0) return null;
      const ins = level[k];
      if (ins.op === Op.LocalTee && ins.index === counter) return k === stepEnd ? { start: k - 3, counter: true, after: true, local: -1, value: 0 } : null;
      if (ins.op === Op.LocalGet && ins.index === counter) return { start: k, counter: true, after: k > stepEnd, local: -1, value: 0 };
      if (ins.op === Op.LocalGet && !writes.has(ins.index)) return { start: k, counter: false, after: false, local: ins.index, value: 0 };
      if (ins.op === Op.I32Const) return { start: k, counter: false, after: false, local: -1, value: ins.value };
      return null;
    };
    const test = (b: number, exits: boolean): VersionedLoop | null => {
      const found = comparison(level, b, operand);
      if (!found) return null;
      const rel = exits ? NEGATED[found.rel] : found.rel;
      if (!(rel === I32_NE || (step > 0 ? UP : DOWN).has(rel))) return null;
      const v: VersionedLoop = { counter, step, after: found.counter.after, rel, boundLocal: found.bound.local, boundValue: found.bound.value };
      return v.boundLocal >= 0 || staticBoundFits(v) ? v : null;
    };
    // The test must be the only way out: then the loop runs exactly the
    // iterations computed, and is charged the same whichever copy runs (fuel
    // stays deterministic, whatever was left when the loop started).
    if (level[last].op === Op.BrIf) {
      if (scan.exits !== 0) return null;
      const v = test(last, false);
      if (v) return v;
      continue;
    }
    if (scan.exits !== 1) return null;
    for (let b = 1; b < last; b++) {
      if (level[b].op !== Op.BrIf || level[b].index === 0) continue;
      const v = test(b, true);
      if (v) return v;
    }
  }
  return null;
}

/** The test a br_if at level[b] makes: the counter, the bound, and `counter rel bound` (branch taken when it holds). */
function comparison(level: Recent[], b: number, operand: (k: number) => Operand | null): { counter: Operand; bound: Operand; rel: number } | null {
  const zero: Operand = { start: -1, counter: false, after: false, local: -1, value: 0 };
  const cmp = level[b - 1]?.op;
  if (cmp === undefined) return null;
  if (cmp >= I32_EQ && cmp <= I32_GE_U) {
    const right = operand(b - 2);
    const left = right ? operand(right.start - 1) : null;
    if (!right || !left || left.counter === right.counter) return null;
    return left.counter ? { counter: left, bound: right, rel: cmp } : { counter: right, bound: left, rel: SWAPPED[cmp] };
  }
  if (cmp === I32_EQZ) {
    const x = operand(b - 2);
    return x?.counter ? { counter: x, bound: zero, rel: I32_EQ } : null;
  }
  const x = operand(b - 1);
  return x?.counter ? { counter: x, bound: zero, rel: I32_NE } : null;
}

/** The extended bound E (counter < E going up, counter > E going down) and the limit on E that keeps the counter from wrapping. */
function limits(v: VersionedLoop): { unsigned: boolean; adjust: number; min: number; max: number } {
  const unsigned = UNSIGNED.has(v.rel);
  const s = Math.abs(v.step);
  const lo = unsigned ? 0 : -(2 ** 31);
  const hi = unsigned ? 2 ** 32 - 1 : 2 ** 31 - 1;
  // le: counter < bound + 1; ge: counter > bound - 1.
  const adjust = v.rel === I32_LE_S || v.rel === I32_LE_U ? 1 : v.rel === I32_GE_S || v.rel === I32_GE_U ? -1 : 0;
  // Going up, the first value past E is below E + s: it must not wrap (E <= hi - s + 1); going down likewise.
  return { unsigned, adjust, min: v.step < 0 ? lo + s - 1 : -Infinity, max: v.step > 0 ? hi - s + 1 : Infinity };
}

/** A constant bound: whether the counter cannot wrap before the loop ends. */
function staticBoundFits(v: VersionedLoop): boolean {
  if (v.rel === I32_NE) return true;
  const { unsigned, adjust, min, max } = limits(v);
  const e = (unsigned ? v.boundValue >>> 0 : v.boundValue) + adjust;
  return e >= min && e <= max;
}

const I32_AND = 0x71;
const I32_SUB = 0x6b;
const I32_WRAP_I64 = 0xa7;
const I64_EQZ = 0x50;
const I64_GT_S = 0x55;
const I64_LE_S = 0x57;
const I64_GE_S = 0x59;
const I64_AND = 0x83;
const I64_REM_U = 0x82;
const I64_DIV_U = 0x80;
const I64_SHR_U = 0x88;
const I64_EXTEND_I32_S = 0xac;
const I64_EXTEND_I32_U = 0xad;

/**
 * The entry test of a versioned loop: leaves an i32 on the stack, nonzero
 * when the loop's iterations are known and `cost` units for each of them are
 * at most the fuel left, with those units in local `units` (i64). `d` is an
 * i64 local it may use.
 */
export function writeVersionTest(out: Writer, v: VersionedLoop, cost: number, fuel: number, d: number, units: number): void {
  const s = Math.abs(v.step);
  const pow2 = (s & (s - 1)) === 0;
  const shift = Math.log2(s);
  const counter = (): void => {
    out.u8(Op.LocalGet);
    out.u32(v.counter);
  };
  const bound = (): void => {
    if (v.boundLocal >= 0) {
      out.u8(Op.LocalGet);
      out.u32(v.boundLocal);
    } else {
      out.u8(Op.I32Const);
      out.s32(v.boundValue);
    }
  };
  const i64 = (n: number): void => {
    out.u8(Op.I64Const);
    out.s64(BigInt(n));
  };
  const divide = (): void => {
    if (s === 1) return;
    if (pow2) {
      i64(shift);
      out.u8(I64_SHR_U);
    } else {
      i64(s);
      out.u8(I64_DIV_U);
    }
  };
  // How far the counter is from the bound, in the direction it steps.
  const distance = (bound: () => void, counter: () => void, sub: number): void => {
    if (v.step > 0) {
      bound();
      counter();
    } else {
      counter();
      bound();
    }
    out.u8(sub);
  };
  if (v.rel === I32_NE) {
    // The distance to the bound, modulo 2^32, in steps: it must be whole and not 0.
    distance(bound, counter, I32_SUB);
    out.u8(I64_EXTEND_I32_U);
    out.u8(Op.LocalTee);
    out.u32(d);
    out.u8(I64_EQZ);
    out.u8(0x45); // i32.eqz
    if (s > 1) {
      out.u8(Op.LocalGet);
      out.u32(d);
      if (pow2) {
        i64(s - 1);
        out.u8(I64_AND);
      } else {
        i64(s);
        out.u8(I64_REM_U);
      }
      out.u8(I64_EQZ);
      out.u8(I32_AND);
    }
    out.u8(Op.LocalGet);
    out.u32(d);
    divide();
  } else {
    // D = E - counter going up, counter - E going down, exact in i64; D >= 1
    // and E within the limits that keep the counter from wrapping.
    const { unsigned, adjust, min, max } = limits(v);
    const extend = unsigned ? I64_EXTEND_I32_U : I64_EXTEND_I32_S;
    const e = (): void => {
      bound();
      out.u8(extend);
    };
    const c = (): void => {
      counter();
      out.u8(extend);
    };
    distance(e, c, Op.I64Sub);
    if (adjust !== 0) {
      i64(v.step > 0 ? adjust : -adjust);
      out.u8(Op.I64Add);
    }
    out.u8(Op.LocalTee);
    out.u32(d);
    i64(0);
    out.u8(I64_GT_S);
    const lo = unsigned ? 0 : -(2 ** 31);
    const hi = unsigned ? 2 ** 32 - 1 : 2 ** 31 - 1;
    if (v.boundLocal >= 0 && (min - adjust > lo || max - adjust < hi)) {
      e();
      if (v.step > 0) {
        i64(max - adjust);
        out.u8(I64_LE_S);
      } else {
        i64(min - adjust);
        out.u8(I64_GE_S);
      }
      out.u8(I32_AND);
    }
    // Steps to reach E: ceil(D / s).
    out.u8(Op.LocalGet);
    out.u32(d);
    if (s > 1) {
      i64(s - 1);
      out.u8(Op.I64Add);
    }
    divide();
  }
  // The iterations: the steps, plus one when the test reads the counter before its step.
  if (!v.after) {
    i64(1);
    out.u8(Op.I64Add);
  }
  i64(cost);
  out.u8(Op.I64Mul);
  out.u8(Op.LocalTee);
  out.u32(units);
  out.u8(Op.GlobalGet);
  out.u32(fuel);
  out.u8(I64_EXTEND_I32_S);
  out.u8(I64_LE_S);
  out.u8(I32_AND);
}

/** Charge the units the entry test computed (fuel -= units). */
export function writeVersionCharge(out: Writer, fuel: number, units: number): void {
  out.u8(Op.GlobalGet);
  out.u32(fuel);
  out.u8(Op.LocalGet);
  out.u32(units);
  out.u8(I32_WRAP_I64);
  out.u8(I32_SUB);
  out.u8(Op.GlobalSet);
  out.u32(fuel);
}
