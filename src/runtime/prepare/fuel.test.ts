import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFuel, MAX_CHECK_COST } from './fuel.ts';
import { FUEL_EXPORT, NO_UNWIND_EXPORT } from './names.ts';
import { referenceHolders } from './reference-holders.ts';
import { ModuleFormatError, Reader } from '../wasm/binary.ts';
import { CodeReader, Op } from '../wasm/instructions.ts';
import { parseModule, type ModuleInfo } from '../wasm/module.ts';
import { body, custom, FUNCREF, functype, I32, name, s32, section, SPEC_SUITE_DIR, u32, vec, wasm, type Bytes } from '../wasm/testing.ts';

const haveSpec = existsSync(SPEC_SUITE_DIR);

/** The exact check sequence the contract specifies. */
function checkBytes(fuel: number, tick: number, cost: number): Bytes {
  return [0x23, ...u32(fuel), 0x41, ...s32(cost), 0x6b, 0x24, ...u32(fuel), 0x23, ...u32(fuel), 0x41, 0x00, 0x48, 0x04, 0x40, 0x10, ...u32(tick), 0x24, ...u32(fuel), 0x0b];
}

/** The check at the header of a wrapped loop: decrement, then branch out to the tick. */
function loopCheckBytes(fuel: number, cost: number): Bytes {
  return [0x23, ...u32(fuel), 0x41, ...s32(cost), 0x6b, 0x24, ...u32(fuel), 0x23, ...u32(fuel), 0x41, 0x00, 0x48, 0x0d, 0x01];
}

interface Check {
  /** Offset in the output module. */
  at: number;
  cost: number;
  entry: boolean;
}

/** Find the fuel checks of every defined function of an instrumented module, verifying their exact bytes. */
function checksOf(out: Uint8Array, info: ModuleInfo = parseModule(out)): Check[][] {
  const fuel = info.exports.find((e) => e.name === FUEL_EXPORT)!.index;
  const tick = info.importedFunctions - 1;
  return info.code.map((b) => {
    const r = new CodeReader(out, b.instructions, b.range.end);
    const found: Check[] = [];
    while (!r.atEnd()) {
      r.next();
      if (r.op !== Op.GlobalGet || r.index !== fuel) continue;
      const at = r.start;
      r.next();
      assert.equal(r.op, Op.I32Const);
      const cost = r.value;
      const entry = at === b.instructions;
      const loopForm = loopCheckBytes(fuel, cost);
      const isLoopForm =
        !entry && out[at - 2] === Op.Loop && [...out.subarray(at, at + loopForm.length)].every((v, i) => v === loopForm[i]);
      const expected = isLoopForm ? loopForm : checkBytes(fuel, tick, cost);
      assert.deepEqual([...out.subarray(at, at + expected.length)], expected, `check at ${at}`);
      r.pos = at + expected.length;
      found.push({ at, cost, entry: at === b.instructions });
    }
    return found;
  });
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
}

/** Instantiate an instrumented module with a tick that returns `budget` and records the fuel it saw. */
function fueled(bytes: Uint8Array<ArrayBuffer>, budget: number, imports: WebAssembly.Imports = {}) {
  const state = { ticks: 0, seen: [] as number[], instance: undefined as WebAssembly.Instance | undefined };
  const tick = () => {
    state.ticks++;
    // A start function ticks before the instance exists.
    const g = state.instance?.exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
    state.seen.push(g ? (g.value as number) : NaN);
    return budget;
  };
  state.instance = instantiate(addFuel(bytes), { ...imports, gate_engine: { tick } });
  const fuel = state.instance.exports[FUEL_EXPORT] as WebAssembly.Global;
  return { state, exports: state.instance.exports, fuel };
}

/** Reference model of the metering: charge each cost, refill when negative. */
class Meter {
  fuel = 0;
  ticks = 0;
  seen: number[] = [];
  readonly budget: number;
  constructor(budget: number) {
    this.budget = budget;
  }
  charge(cost: number): void {
    this.fuel -= cost;
    if (this.fuel < 0) {
      this.ticks++;
      this.seen.push(this.fuel);
      this.fuel = this.budget;
    }
  }
}

// (func $run (param $n i32) (result i32) (local $i i32)
//   (loop (local.tee $i (call $inc (local.get $i))) (br_if 0 (i32.lt_u (local.get $n)))) (local.get $i))
// (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))   ;; a bounded leaf
// (func $nested ...): two nested loops, the inner one runs 3 times per outer iteration.
const loopModule = wasm(
  section(1, vec([functype([I32], [I32])])),
  section(3, vec([[0], [0], [0]])),
  section(7, vec([[...name('run'), 0, 0], [...name('inc'), 0, 1], [...name('nested'), 0, 2]])),
  section(
    10,
    vec([
      body(
        [[1, I32]],
        [0x03, 0x40, 0x20, 1, 0x10, 1, 0x22, 1, 0x20, 0, 0x49, 0x0d, 0, 0x0b, 0x20, 1, 0x0b],
      ),
      body([], [0x20, 0, 0x41, 1, 0x6a, 0x0b]),
      body(
        [[2, I32]],
        [
          0x03, 0x40, // outer loop
          0x41, 0, 0x21, 2, // j = 0
          0x03, 0x40, // inner loop
          0x20, 2, 0x41, 1, 0x6a, 0x22, 2, 0x41, 3, 0x49, 0x0d, 0, // j++ < 3
          0x0b,
          0x20, 1, 0x41, 1, 0x6a, 0x22, 1, 0x20, 0, 0x49, 0x0d, 0, // i++ < n
          0x0b,
          0x20, 1,
          0x0b,
        ],
      ),
    ]),
  ),
);

test('checks have the exact contract bytes and costs', () => {
  const out = addFuel(loopModule);
  assert.ok(WebAssembly.validate(out));
  const info = parseModule(out);
  const [run, inc, nested] = checksOf(out, info);
  // run: entry = loop + local.get; loop = 6 instructions + the leaf's 3.
  assert.deepEqual(run.map((c) => [c.entry, c.cost]), [[true, 2], [false, 9]]);
  assert.deepEqual(inc, [], 'a bounded leaf has no check');
  // nested: entry = loop + local.get; outer = 2 + loop + 7; inner = 7.
  assert.deepEqual(nested.map((c) => [c.entry, c.cost]), [[true, 2], [false, 10], [false, 7]]);
  // The loop is wrapped (block, loop, block, loop) and its check comes right
  // after the original loop's block type.
  const runBody = info.code[0];
  const loopAt = runBody.instructions + checkBytes(0, 0, 2).length;
  assert.deepEqual([...out.subarray(loopAt, loopAt + 8)], [0x02, 0x40, 0x03, 0x40, 0x02, 0x40, 0x03, 0x40]);
  assert.equal(run[1].at, loopAt + 8);
});

test('tick runs as the reference meter predicts', () => {
  for (const budget of [1, 3, 10, 100, 1_000_000]) {
    for (const n of [1, 2, 7, 1000]) {
      const { state, exports, fuel } = fueled(loopModule, budget);
      const meter = new Meter(budget);
      assert.equal((exports.run as (n: number) => number)(n), n);
      meter.charge(2);
      for (let i = 0; i < n; i++) meter.charge(9);
      assert.deepEqual([state.ticks, fuel.value], [meter.ticks, meter.fuel], `run(${n}) with budget ${budget}`);
      assert.deepEqual(state.seen, meter.seen, 'tick sees the negative remainder');

      (exports.nested as (n: number) => number)(n);
      meter.charge(2);
      for (let i = 0; i < n; i++) {
        meter.charge(10);
        for (let j = 0; j < 3; j++) meter.charge(7);
      }
      assert.deepEqual([state.ticks, fuel.value], [meter.ticks, meter.fuel], `nested(${n}) with budget ${budget}`);
    }
  }
});

test('a simple loop of known iterations calls tick the expected number of times', () => {
  const { state, exports } = fueled(loopModule, 90);
  (exports.run as (n: number) => number)(1000);
  // 2 + 1000 * 9 = 9002 units: the entry check finds no fuel and ticks, then
  // one tick per 90 units (give or take the overdraw of the last check).
  const meter = new Meter(90);
  meter.charge(2);
  for (let i = 0; i < 1000; i++) meter.charge(9);
  assert.equal(state.ticks, meter.ticks);
  assert.ok(state.ticks >= Math.floor(9002 / 99) && state.ticks <= Math.ceil(9002 / 90) + 1);
});

test('bounded leaves are not metered on entry', () => {
  const { state, exports, fuel } = fueled(loopModule, 5);
  assert.equal((exports.inc as (n: number) => number)(41), 42);
  assert.equal(state.ticks, 0);
  assert.equal(fuel.value, 0);
});

test('costs are clamped to [1, 1000000]', () => {
  // An empty loop costs 1; a function of 1,000,001 nops costs 1,000,000.
  const nops = new Array<number>(1_000_001).fill(0x01);
  const m = wasm(
    section(1, vec([functype([], [])])),
    section(3, vec([[0], [0]])),
    section(10, vec([body([], [0x03, 0x40, 0x0b, 0x0b]), body([], [...nops, 0x03, 0x40, 0x0b, 0x0b])])),
  );
  const out = addFuel(m);
  assert.ok(WebAssembly.validate(out));
  const [small, big] = checksOf(out);
  assert.deepEqual(small.map((c) => c.cost), [1, 1]);
  assert.deepEqual(big.map((c) => c.cost), [MAX_CHECK_COST, 1]);
});

// Function indices everywhere: imports, table segments of all eight
// encodings, a ref.func global, ref.func in code, exports, start, names.
const typeI = functype([], [I32]);
const renumberModule = wasm(
  custom('first', [1]),
  section(1, vec([typeI, functype([I32], [I32]), functype([], [])])),
  section(2, vec([[...name('env'), ...name('a'), 0, 0], [...name('env'), ...name('b'), 0, 0]])),
  section(3, vec([[0], [0], [0], [1], [2], [0], [0], [0]])),
  section(4, vec([[FUNCREF, 0, 10]])),
  section(6, vec([[FUNCREF, 0, 0xd2, 4, 0x0b], [I32, 1, 0x41, 0, 0x0b]])),
  section(
    7,
    vec([
      [...name('dispatch'), 0, 5],
      [...name('viaGlobal'), 0, 7],
      [...name('callA'), 0, 8],
      [...name('refFunc'), 0, 9],
      [...name('c1'), 0, 2],
      [...name('started'), 3, 1],
      [...name('table'), 1, 0],
    ]),
  ),
  section(8, [6]),
  custom('middle', [2, 3]),
  section(
    9,
    vec([
      [0, 0x41, 0, 0x0b, ...vec([[2], [3]])],
      [1, 0, ...vec([[4]])],
      [2, 0, 0x41, 2, 0x0b, 0, ...vec([[0]])],
      [3, 0, ...vec([[3]])],
      [4, 0x41, 3, 0x0b, ...vec([[0xd2, 4, 0x0b], [0xd0, FUNCREF, 0x0b]])],
      [5, FUNCREF, ...vec([[0xd2, 2, 0x0b]])],
      [6, 0, 0x41, 5, 0x0b, FUNCREF, ...vec([[0xd2, 1, 0x0b]])],
      [7, FUNCREF, ...vec([[0xd2, 2, 0x0b]])],
    ]),
  ),
  section(
    10,
    vec([
      body([], [0x41, 1, 0x0b]), // 2: c1
      body([], [0x41, 2, 0x0b]), // 3: c2
      body([], [0x41, 3, 0x0b]), // 4: c3
      body([], [0x20, 0, 0x11, 0, 0, 0x0b]), // 5: dispatch
      body([], [0x10, 2, 0x24, 1, 0x0b]), // 6: start
      body([], [0x41, 9, 0x23, 0, 0x26, 0, 0x41, 9, 0x11, 0, 0, 0x0b]), // 7: viaGlobal
      body([], [0x10, 0, 0x10, 3, 0x6a, 0x0b]), // 8: callA
      body([], [0x41, 8, 0xd2, 3, 0x26, 0, 0x41, 8, 0x11, 0, 0, 0x0b]), // 9: refFunc
    ]),
  ),
  custom(
    'name',
    [
      ...[0, ...u32(name('m').length), ...name('m')],
      ...section(1, vec([[0, ...name('a')], [1, ...name('b')], [2, ...name('c1')], [5, ...name('dispatch')]])),
      ...section(2, vec([[5, ...vec([[0, ...name('idx')]])]])),
      ...section(3, vec([[5, ...vec([[0, ...name('label')]])]])),
    ],
  ),
  custom('last', [4]),
);

function nameMap(bytes: Uint8Array, info: ModuleInfo): Map<number, unknown> {
  const c = info.customs.find((s) => s.name === 'name')!;
  const r = new Reader(bytes, c.payload.start, c.payload.end);
  const out = new Map<number, unknown>();
  while (!r.atEnd()) {
    const id = r.u8();
    const end = r.u32() + r.pos;
    if (id === 0) {
      out.set(0, r.name());
    } else {
      const entries: unknown[] = [];
      for (let n = r.u32(); n > 0; n--) {
        const index = r.u32();
        if (id === 1) entries.push([index, r.name()]);
        else {
          const inner: unknown[] = [];
          for (let k = r.u32(); k > 0; k--) inner.push([r.u32(), r.name()]);
          entries.push([index, inner]);
        }
      }
      out.set(id, entries);
    }
    r.pos = end;
  }
  return out;
}

test('every function reference is renumbered', () => {
  assert.ok(WebAssembly.validate(renumberModule), 'fixture is valid');
  const env = { a: () => 10, b: () => 20 };
  const plain = instantiate(renumberModule, { env }).exports;
  for (const budget of [1, 1000]) {
    const { exports, state } = fueled(renumberModule, budget, { env });
    for (const e of [plain, exports]) {
      const dispatch = e.dispatch as (i: number) => number;
      assert.deepEqual([0, 1, 2, 3, 5].map(dispatch), [1, 2, 10, 3, 20]);
      assert.throws(() => dispatch(4), WebAssembly.RuntimeError);
      assert.equal((e.viaGlobal as () => number)(), 3);
      assert.equal((e.callA as () => number)(), 12);
      assert.equal((e.refFunc as () => number)(), 2);
      assert.equal((e.c1 as () => number)(), 1);
      assert.equal((e.started as WebAssembly.Global).value, 1, 'start function ran');
    }
    assert.ok(state.ticks > 0);
  }

  const out = addFuel(renumberModule);
  const info = parseModule(out);
  assert.deepEqual(info.imports.at(-1), { module: 'gate_engine', field: 'tick', kind: 'func', typeIndex: 3 });
  assert.deepEqual(info.types[3], { params: [], results: ['i32'] });
  assert.equal(info.start, 7);
  assert.deepEqual(
    info.exports.map((e) => [e.name, e.index]),
    // refFunc keeps a reference while it calls: wrapped, with the count exported (reference-holders.ts).
    [['dispatch', 6], ['viaGlobal', 8], ['callA', 9], ['refFunc', 10], ['c1', 3], ['started', 1], ['table', 0], [FUEL_EXPORT, 2], [NO_UNWIND_EXPORT, 3]],
  );
  assert.deepEqual(
    info.elements.map((e) => [e.flags, e.mode, e.encoding]),
    [[0, 'active', 'indices'], [1, 'passive', 'indices'], [2, 'active', 'indices'], [3, 'declarative', 'indices'], [4, 'active', 'expressions'], [5, 'passive', 'expressions'], [6, 'active', 'expressions'], [7, 'declarative', 'expressions']],
  );
  assert.deepEqual(info.globals.at(-1), { type: 'i32', mutable: true, init: info.globals.at(-1)!.init, range: info.globals.at(-1)!.range, funcRefs: 0 });
  assert.deepEqual([...out.subarray(info.globals.at(-1)!.init.start, info.globals.at(-1)!.init.end)], [0x41, 0, 0x0b]);
  // Custom sections stay where they were, between the same sections.
  assert.deepEqual(
    info.customs.map((c) => [c.name, c.after]),
    [['first', 0], ['middle', 8], ['name', 10], ['last', 10]],
  );
  // Names: the module name stays, function and local names shift, label names go.
  const names = nameMap(out, info);
  assert.deepEqual([...names.keys()], [0, 1, 2]);
  assert.equal(names.get(0), 'm');
  assert.deepEqual(names.get(1), [[0, 'a'], [1, 'b'], [3, 'c1'], [6, 'dispatch']]);
  assert.deepEqual(names.get(2), [[6, [[0, 'idx']]]]);
});

test('a malformed name section is dropped, other custom sections are kept verbatim', () => {
  const m = wasm(
    section(1, vec([functype([], [])])),
    section(3, vec([[0]])),
    section(10, vec([body([], [0x0b])])),
    custom('name', [1, 5, 1, 0]),
    custom('producers', [7, 7, 7]),
  );
  const out = addFuel(m);
  const info = parseModule(out);
  assert.deepEqual(info.customs.map((c) => c.name), ['producers']);
  const c = info.customs[0];
  assert.deepEqual([...out.subarray(c.payload.start, c.payload.end)], [7, 7, 7]);
});

test('missing sections are created in order; the empty module gains import, global and export', () => {
  const out = addFuel(wasm(custom('c', [])));
  const info = parseModule(out);
  assert.deepEqual(info.sections.map((s) => s.id), [1, 2, 6, 7, 0]);
  let ticks = 0;
  const inst = instantiate(out, { gate_engine: { tick: () => ++ticks } });
  assert.equal((inst.exports[FUEL_EXPORT] as WebAssembly.Global).value, 0);
  assert.equal(ticks, 0);
  // A module with only functions: type exists, the others are added around it.
  const f = addFuel(wasm(section(1, vec([functype([], [])])), section(3, vec([[0]])), section(10, vec([body([], [0x0b])]))));
  assert.deepEqual(parseModule(f).sections.map((s) => s.id), [1, 2, 3, 6, 7, 10]);
});

test('data count section and segment modes are preserved', () => {
  const m = wasm(
    section(1, vec([functype([], [])])),
    section(3, vec([[0]])),
    section(5, vec([[0, 1]])),
    section(12, [2]),
    section(10, vec([body([], [0x41, 0, 0x41, 0, 0x41, 1, 0xfc, 8, 1, 0, 0xfc, 9, 1, 0x0b])])),
    section(11, vec([[0, 0x41, 0, 0x0b, ...vec([[1]])], [1, ...vec([[2]])]])),
  );
  const out = addFuel(m);
  assert.ok(WebAssembly.validate(out));
  const a = parseModule(m);
  const b = parseModule(out);
  assert.equal(b.dataCount, 2);
  assert.deepEqual(
    b.data.map((d) => [d.mode, [...out.subarray(d.data.start, d.data.end)]]),
    a.data.map((d) => [d.mode, [...m.subarray(d.data.start, d.data.end)]]),
  );
  // Sections that need no change are byte-identical.
  for (const id of [3, 5, 12, 11]) {
    const sa = a.sections.find((s) => s.id === id)!;
    const sb = b.sections.find((s) => s.id === id)!;
    assert.deepEqual(out.subarray(sb.start, sb.end), m.subarray(sa.start, sa.end), `section ${id}`);
  }
});

test('reserved engine names are refused', () => {
  const imp = wasm(section(1, vec([functype([], [])])), section(2, vec([[...name('gate_engine'), ...name('x'), 0, 0]])));
  assert.throws(() => addFuel(imp), (e: unknown) => e instanceof ModuleFormatError && /reserved/.test(e.message));
  const exp = wasm(section(6, vec([[I32, 0, 0x41, 0, 0x0b]])), section(7, vec([[...name('gate_engine.fuel'), 3, 0]])));
  assert.throws(() => addFuel(exp), (e: unknown) => e instanceof ModuleFormatError && /export name "gate_engine.fuel" is reserved/.test(e.message));
  const ok = wasm(section(6, vec([[I32, 0, 0x41, 0, 0x0b]])), section(7, vec([[...name('gate_engine'), 3, 0]])));
  assert.doesNotThrow(() => addFuel(ok));
});

test('the output is deterministic and accepts a precomputed ModuleInfo', () => {
  const a = addFuel(renumberModule);
  const b = addFuel(renumberModule.slice());
  const c = addFuel(renumberModule, parseModule(renumberModule));
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
});

test('every valid spec-suite module still validates after instrumentation', { skip: haveSpec ? false : `spec suite not found at ${SPEC_SUITE_DIR}` }, () => {
  let count = 0;
  let checks = 0;
  for (const f of readdirSync(SPEC_SUITE_DIR).sort()) {
    if (!f.endsWith('.wasm')) continue;
    const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f)));
    if (!WebAssembly.validate(bytes)) continue;
    let info;
    try {
      info = parseModule(bytes);
    } catch {
      continue; // malformed in 2.0 though V8 accepts it (see spec-suite.test.ts)
    }
    const out = addFuel(bytes, info);
    assert.ok(WebAssembly.validate(out), f);
    const outInfo = parseModule(out);
    // Functions that hold references become wrappers (no checks); their bodies follow all others.
    const holders = referenceHolders(bytes, info);
    assert.equal(outInfo.code.length, info.code.length + holders.length);
    assert.equal(outInfo.importedFunctions, info.importedFunctions + 1);
    const found = checksOf(out, outInfo);
    info.code.forEach((b, i) => {
      const leaf = b.loops === 0 && b.calls === 0;
      const k = holders.indexOf(i);
      if (k >= 0) assert.equal(found[i].length, 0, `${f} wrapper ${i}`);
      const at = k >= 0 ? info.code.length + k : i;
      assert.equal(found[at].length, b.loops + (leaf ? 0 : 1), `${f} function ${i}`);
      checks += found[at].length;
    });
    count++;
  }
  console.log(`instrumented ${count} valid spec modules, ${checks} checks`);
});

test('mutated spec modules that V8 accepts still validate after instrumentation', { skip: haveSpec ? false : `spec suite not found at ${SPEC_SUITE_DIR}` }, () => {
  const modules = readdirSync(SPEC_SUITE_DIR)
    .filter((f) => f.endsWith('.wasm'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f))))
    .filter((b) => b.length > 8 && WebAssembly.validate(b));
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let instrumented = 0;
  for (let i = 0; i < 20000; i++) {
    const bytes = modules[Math.floor(rand() * modules.length)].slice();
    const at = 8 + Math.floor(rand() * (bytes.length - 8));
    bytes[at] = rand() < 0.5 ? bytes[at] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
    let info: ModuleInfo;
    try {
      info = parseModule(bytes);
    } catch {
      continue;
    }
    if (!WebAssembly.validate(bytes)) continue;
    const out = addFuel(bytes, info);
    assert.ok(WebAssembly.validate(out), `mutant of ${Buffer.from(bytes).toString('hex')}`);
    instrumented++;
  }
  assert.ok(instrumented > 1000);
});
