import { test } from 'node:test';
import assert from 'node:assert/strict';
import binaryen from 'binaryen';
import { ModuleFormatError, UnsupportedFeatureError } from './binary.ts';
import { parseModule, type ModuleInfo, type Range } from './module.ts';
import { body, custom, F32, FUNCREF, functype, I32, I64, name, section, u32, V128, vec, wasm, type Bytes } from './testing.ts';

// Binaryen with all features would encode null references with GC types.
const F = binaryen.Features;
const FEATURES_2_0 =
  F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt | F.SignExt | F.TailCall | F.ReferenceTypes | F.Multivalue | F.MultiMemory;

function watToBinary(wat: string, features = FEATURES_2_0): Uint8Array<ArrayBuffer> {
  const m = binaryen.parseText(wat);
  try {
    m.setFeatures(features);
    return m.emitBinary() as Uint8Array<ArrayBuffer>;
  } finally {
    m.dispose();
  }
}

function slice(bytes: Uint8Array, r: Range): number[] {
  return [...bytes.subarray(r.start, r.end)];
}

function malformed(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseModule(bytes),
    (e: unknown) => {
      assert.ok(e instanceof ModuleFormatError, `expected ModuleFormatError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

function unsupported(bytes: Uint8Array, feature: string, pattern?: RegExp): void {
  assert.throws(
    () => parseModule(bytes),
    (e: unknown) => {
      assert.ok(e instanceof UnsupportedFeatureError, `expected UnsupportedFeatureError, got ${String(e)}`);
      assert.equal(e.feature, feature);
      assert.match(e.message, /^module uses an unsupported WebAssembly feature: /);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

// A module with every section, laid out by hand so that ranges can be checked.
const f1Code: Bytes = [0x20, 0, 0x10, 0, 0x0b]; // local.get 0; call 0
const f2Code: Bytes = [0x03, 0x40, 0x01, 0x0b, 0x0b]; // loop nop end
const f3Code: Bytes = [0x41, 1, 0x42, 2, 0x0b]; // i32.const 1; i64.const 2
const globalInit1: Bytes = [0x41, 7, 0x0b];
const globalInit2: Bytes = [0xd2, 1, 0x0b];
const richSections = {
  type: section(1, vec([functype([I32], [I32]), functype([], []), functype([], [I32, I64])])),
  early: custom('early', [1, 2, 3]),
  import: section(
    2,
    vec([
      [...name('env'), ...name('f'), 0, 0],
      [...name('env'), ...name('t'), 1, FUNCREF, 0, 1],
      [...name('env'), ...name('m'), 2, 1, 1, 2],
      [...name('env'), ...name('g'), 3, I32, 1],
    ]),
  ),
  func: section(3, vec([[0], [1], [2]])),
  table: section(4, vec([[FUNCREF, 0, 2]])),
  global: section(6, vec([[I32, 0, ...globalInit1], [FUNCREF, 1, ...globalInit2]])),
  export: section(7, vec([[...name('run'), 0, 1], [...name('g'), 3, 2], [...name('imported'), 3, 0]])),
  start: section(8, [2]),
  elem: section(
    9,
    vec([
      [0, 0x41, 0, 0x0b, ...vec([[1], [2]])],
      [1, 0x00, ...vec([[3]])],
      [3, 0x00, ...vec([[1]])],
      [5, FUNCREF, ...vec([[0xd2, 2, 0x0b], [0xd0, FUNCREF, 0x0b]])],
      [6, 1, 0x41, 1, 0x0b, FUNCREF, ...vec([[0xd2, 3, 0x0b]])],
    ]),
  ),
  datacount: section(12, [2]),
  code: section(10, vec([body([[1, I32]], f1Code), body([], f2Code), body([[2, I64], [1, F32]], f3Code)])),
  data: section(11, vec([[0, 0x41, 0, 0x0b, ...vec([[0x68], [0x69]])], [1, ...vec([[0x78]])]])),
  late: custom('late', [9]),
};
const rich = wasm(...Object.values(richSections));

test('hand-built module: every part is found where it is', () => {
  assert.ok(WebAssembly.validate(rich), 'the fixture is a valid module');
  const info = parseModule(rich);
  assert.deepEqual(info.types, [
    { params: ['i32'], results: ['i32'] },
    { params: [], results: [] },
    { params: [], results: ['i32', 'i64'] },
  ]);
  assert.deepEqual(info.imports, [
    { module: 'env', field: 'f', kind: 'func', typeIndex: 0 },
    { module: 'env', field: 't', kind: 'table', table: { element: 'funcref', initial: 1 } },
    { module: 'env', field: 'm', kind: 'memory', memory: { initial: 1, maximum: 2, shared: false, memory64: false } },
    { module: 'env', field: 'g', kind: 'global', global: { type: 'i32', mutable: true } },
  ]);
  assert.equal(info.importedFunctions, 1);
  assert.equal(info.importedTables, 1);
  assert.equal(info.importedMemories, 1);
  assert.equal(info.importedGlobals, 1);
  assert.deepEqual(info.functions, [0, 1, 2]);
  assert.equal(info.functionType(0), 0);
  assert.equal(info.functionType(3), 2);
  assert.deepEqual(info.functionSignature(1), { params: ['i32'], results: ['i32'] });
  assert.throws(() => info.functionType(4), ModuleFormatError);
  assert.deepEqual(info.tables, [{ element: 'funcref', initial: 2 }]);
  assert.deepEqual(info.memories, []);
  assert.equal(info.globals.length, 2);
  assert.deepEqual(slice(rich, info.globals[0].init), globalInit1);
  assert.deepEqual(slice(rich, info.globals[1].init), globalInit2);
  assert.deepEqual(slice(rich, info.globals[1].range), [FUNCREF, 1, ...globalInit2]);
  assert.equal(info.globals[1].mutable, true);
  assert.equal(info.globals[1].type, 'funcref');
  assert.equal(info.globals[1].funcRefs, 1);
  assert.deepEqual(info.exports, [
    { name: 'run', kind: 'func', index: 1 },
    { name: 'g', kind: 'global', index: 2 },
    { name: 'imported', kind: 'global', index: 0 },
  ]);
  assert.equal(info.start, 2);

  const [e0, e1, e2, e3, e4] = info.elements;
  assert.equal(info.elements.length, 5);
  assert.deepEqual([e0.mode, e0.flags, e0.table, e0.encoding, e0.count, e0.type], ['active', 0, 0, 'indices', 2, 'funcref']);
  assert.deepEqual(slice(rich, e0.offset!), [0x41, 0, 0x0b]);
  assert.deepEqual(slice(rich, e0.items), [1, 2]);
  assert.deepEqual([e1.mode, e1.encoding, e1.count, e1.offset], ['passive', 'indices', 1, undefined]);
  assert.deepEqual([e2.mode, e2.encoding], ['declarative', 'indices']);
  assert.deepEqual([e3.mode, e3.encoding, e3.count], ['passive', 'expressions', 2]);
  assert.deepEqual(slice(rich, e3.items), [0xd2, 2, 0x0b, 0xd0, FUNCREF, 0x0b]);
  assert.deepEqual([e4.mode, e4.table, e4.encoding], ['active', 1, 'expressions']);
  assert.deepEqual(slice(rich, e4.range), [6, 1, 0x41, 1, 0x0b, FUNCREF, 1, 0xd2, 3, 0x0b]);

  assert.equal(info.dataCount, 2);
  assert.equal(info.data.length, 2);
  assert.deepEqual([info.data[0].mode, info.data[0].memory], ['active', 0]);
  assert.deepEqual(slice(rich, info.data[0].offset!), [0x41, 0, 0x0b]);
  assert.deepEqual(slice(rich, info.data[0].data), [0x68, 0x69]);
  assert.deepEqual([info.data[1].mode, info.data[1].offset], ['passive', undefined]);
  assert.deepEqual(slice(rich, info.data[1].data), [0x78]);

  assert.equal(info.code.length, 3);
  const [c1, c2, c3] = info.code;
  assert.deepEqual(slice(rich, c1.range), [1, 1, I32, ...f1Code]);
  assert.deepEqual(slice(rich, c1.locals), [1, 1, I32]);
  assert.equal(c1.instructions, c1.locals.end);
  assert.deepEqual(slice(rich, { start: c1.instructions, end: c1.range.end }), f1Code);
  assert.deepEqual([c1.instructionCount, c1.loops, c1.calls, c1.funcRefs], [2, 0, 1, 1]);
  assert.deepEqual([c2.instructionCount, c2.loops, c2.calls], [2, 1, 0]);
  assert.deepEqual(slice(rich, c3.locals), [2, 2, I64, 1, F32]);
  assert.deepEqual(slice(rich, { start: c3.instructions, end: c3.range.end }), f3Code);

  assert.deepEqual(
    info.customs.map((c) => [c.name, c.after, info.sections[c.section].id, slice(rich, c.payload)]),
    [
      ['early', 1, 0, [1, 2, 3]],
      ['late', 11, 0, [9]],
    ],
  );
  assert.deepEqual(
    info.sections.map((s) => s.id),
    [1, 0, 2, 3, 4, 6, 7, 8, 9, 12, 10, 11, 0],
  );
  let at = 8;
  for (const [i, s] of info.sections.entries()) {
    assert.equal(s.start, at, `section ${i} starts where the previous one ended`);
    assert.equal(rich[s.start], s.id);
    at = s.end;
  }
  assert.equal(at, rich.length);
  assert.deepEqual(info.features, ['bulk-memory', 'reference-types', 'multi-value', 'mutable-globals']);
});

test('an empty module and an MVP module use no features', () => {
  const empty = parseModule(wasm());
  assert.deepEqual(empty.sections, []);
  assert.deepEqual(empty.features, []);
  const mvp = watToBinary(`(module
    (memory 1) (table 2 funcref) (global $g (mut i32) (i32.const 0))
    (func $f (param i32) (result i32)
      (drop (block (result i32) (loop (br_if 1 (i32.const 1) (local.get 0)) (br 0)) (i32.const 0)))
      (drop (call_indirect (param i32) (result i32) (i32.const 0) (i32.const 0)))
      (i32.store offset=4 (i32.const 0) (i32.load8_u (i32.const 8)))
      (drop (memory.grow (i32.const 1)))
      (f64.const 1.5) (drop) (i64.const -5) (drop)
      (select (i32.const 1) (i32.const 2) (i32.const 0)))
    (export "f" (func $f)) (elem (i32.const 0) $f) (data (i32.const 0) "abc"))`,
    F.MVP,
  );
  assert.ok(WebAssembly.validate(mvp));
  assert.deepEqual(parseModule(mvp).features, []);
});

test('feature families are detected', () => {
  const cases: [string, string][] = [
    ['sign-ext', '(func (result i32) (i32.extend8_s (i32.const 1)))'],
    ['sat-float-to-int', '(func (result i32) (i32.trunc_sat_f32_s (f32.const 1)))'],
    ['bulk-memory', '(memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)))'],
    ['bulk-memory', '(memory 1) (data "x") (func (data.drop 0))'],
    ['reference-types', '(func (result i32) (ref.is_null (ref.null extern)))'],
    ['reference-types', '(table 1 externref)'],
    ['reference-types', '(func (param externref))'],
    ['reference-types', '(table 1 funcref) (func (result i32) (table.size 0))'],
    ['multi-value', '(func (result i32 i32) (i32.const 1) (i32.const 2))'],
    ['multi-value', '(func (result i32) (block (result i32 i32) (i32.const 1) (i32.const 2)) (i32.add))'],
    ['simd', '(func (result v128) (v128.const i32x4 1 2 3 4))'],
    ['simd', '(global v128 (v128.const i64x2 0 0))'],
    ['tail-call', '(func $f (return_call $f))'],
    ['tail-call', '(type $t (func)) (table 1 funcref) (func (return_call_indirect (type $t) (i32.const 0)))'],
    ['multi-memory', '(memory 1) (memory 1)'],
    ['multi-memory', '(memory 1) (memory $b 1) (func (result i32) (i32.load $b (i32.const 0)))'],
    ['mutable-globals', '(global (export "g") (mut i32) (i32.const 0))'],
    ['mutable-globals', '(import "a" "g" (global (mut i32)))'],
  ];
  for (const [feature, fields] of cases) {
    const bytes = watToBinary(`(module ${fields})`);
    assert.ok(WebAssembly.validate(bytes), `${fields} is valid`);
    const info = parseModule(bytes);
    assert.ok(info.features.includes(feature as never), `${fields}: expected ${feature} in ${info.features.join(',')}`);
  }
});

test('features outside the supported set are refused by name', () => {
  const type0 = section(1, vec([functype([], [])]));
  const func0 = section(3, vec([[0]]));
  const code = (...b: number[]) => section(10, vec([body([], [...b, 0x0b])]));
  const mem = section(5, vec([[0, 1]]));
  unsupported(wasm(type0, func0, mem, code(0x41, 0, 0xfe, 0x10, 2, 0, 0x1a)), 'threads', /atomic instruction 0xfe 0x10 at offset 0x/);
  unsupported(wasm(section(5, vec([[3, 1, 2]]))), 'threads', /shared memory/);
  unsupported(wasm(section(5, vec([[4, 1]]))), 'memory64');
  unsupported(wasm(section(4, vec([[FUNCREF, 5, 1, 2]]))), 'memory64');
  unsupported(wasm(section(5, vec([[8, 1, 0]]))), 'custom-page-sizes');
  unsupported(wasm(type0, section(13, vec([[0, 0]]))), 'exception-handling', /tag section/);
  unsupported(wasm(type0, func0, code(0x06, 0x40, 0x0b)), 'exception-handling', /instruction 0x6/);
  unsupported(wasm(type0, func0, code(0x1f, 0x40, 0, 0x0b)), 'exception-handling');
  unsupported(wasm(type0, section(2, vec([[...name('a'), ...name('b'), 4, 0, 0]]))), 'exception-handling', /tag import/);
  unsupported(wasm(section(1, vec([[0x5f, 0]]))), 'gc', /type form 0x5f/);
  unsupported(wasm(section(1, vec([[0x4e, 0]]))), 'gc');
  unsupported(wasm(type0, func0, code(0xfb, 0x1c)), 'gc');
  unsupported(wasm(section(1, vec([functype([0x6e], [])]))), 'gc', /value type 0x6e/);
  unsupported(wasm(section(1, vec([functype([0x64, 0], [])]))), 'function-references');
  unsupported(wasm(type0, func0, code(0xd0, 0x00, 0x1a)), 'function-references', /heap type/);
  unsupported(wasm(type0, func0, code(0x14, 0)), 'function-references');
  unsupported(wasm(type0, func0, code(0xfd, 0x80, 0x02)), 'relaxed-simd', /0xfd 0x100/);
  unsupported(wasm(section(6, vec([[I32, 0, 0x41, 1, 0x41, 2, 0x6a, 0x0b]]))), 'extended-const');
  unsupported(wasm(type0, func0, code(0x41, 0, 0x41, 0, 0xfc, 19)), 'wide-arithmetic');
  unsupported(Uint8Array.of(0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0), 'component-model');
  // The error names the offset of the instruction.
  const atomic = wasm(type0, func0, mem, code(0x41, 0, 0xfe, 0x10, 2, 0, 0x1a));
  assert.throws(() => parseModule(atomic), (e: UnsupportedFeatureError) => e.offset === atomic.indexOf(0xfe));
});

test('malformed modules are refused with what and where', () => {
  const type0 = section(1, vec([functype([], [])]));
  const func0 = section(3, vec([[0]]));
  const code = (...b: number[]) => section(10, vec([body([], b)]));
  malformed(Uint8Array.of(1, 2, 3, 4, 1, 0, 0, 0), /magic header/);
  malformed(Uint8Array.of(0, 0x61, 0x73, 0x6d, 2, 0, 0, 0), /unknown binary version 0x2/);
  malformed(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0), /unexpected end/);
  malformed(wasm([14, 0]), /invalid section id 14 at offset 0x8/);
  malformed(wasm(func0, type0), /unexpected section id 1: duplicate or out of order at offset 0xc/);
  malformed(wasm(type0, type0), /duplicate or out of order/);
  malformed(wasm([1, 10, 0]), /section size 10 exceeds the remaining 1 bytes of the module at offset 0x9/);
  malformed(wasm(section(1, [1, 0x60, 0, 0, 0])), /section size mismatch/);
  malformed(wasm(section(1, [1, 0x60, 0])), /unexpected end of section at offset 0xd/);
  malformed(wasm(type0, func0), /function and code section have inconsistent lengths \(1 and 0\)/);
  malformed(wasm(section(11, vec([])), section(12, [1])), /out of order/);
  malformed(wasm(section(12, [1]), section(11, vec([]))), /data count and data section have inconsistent lengths/);
  malformed(wasm(type0, func0, section(5, vec([[0, 1]])), code(0xfc, 9, 0, 0x0b)), /data count section required/);
  malformed(wasm(type0, func0, code(0x17, 0x0b)), /unknown opcode 0x17 at offset 0x/);
  malformed(wasm(type0, func0, code(0xfc, 0x20, 0x0b)), /unknown opcode 0xfc 0x20/);
  malformed(wasm(type0, func0, code(0xfd, 0x9a, 0x01, 0x0b)), /unknown opcode 0xfd 0x9a/);
  malformed(wasm(type0, func0, code(0x01)), /unexpected end of function body/);
  malformed(wasm(type0, func0, code(0x02, 0x40, 0x0b)), /unexpected end of function body/);
  malformed(wasm(type0, func0, code(0x0b, 0x01)), /operators after the end of the function body/);
  malformed(wasm(type0, func0, section(10, vec([[...u32(3), 1, 1, 0x55, 0x0b]]))), /invalid value type 0x55/);
  malformed(
    wasm(type0, func0, section(10, vec([[...u32(14), 2, 0xff, 0xff, 0xff, 0xff, 0x0f, I32, 0xff, 0xff, 0xff, 0xff, 0x0f, I32, 0x0b]]))),
    /too many locals/,
  );
  malformed(wasm(section(2, vec([[...name('a'), ...name('b'), 5, 0]]))), /invalid import kind 5/);
  malformed(wasm(section(6, vec([[I32, 2, 0x41, 0, 0x0b]]))), /invalid global mutability/);
  malformed(wasm(section(6, vec([[I32, 0, 0x20, 0, 0x0b]]))), /not allowed in a constant expression/);
  malformed(wasm(section(9, vec([[8, 0]]))), /invalid element segment flags 8/);
  malformed(wasm(section(9, vec([[1, 1, 0]]))), /invalid element kind 0x1/);
  malformed(wasm(section(11, vec([[3, 0]]))), /invalid data segment flags 3/);
  malformed(wasm(section(0, [5, 0x61])), /length 5 out of bounds of the section/);
  malformed(wasm(section(0, [2, 0xc3, 0x28])), /malformed UTF-8/);
  malformed(wasm(section(5, vec([[2 + 0x10, 1]]))), /invalid memory limits flags/);
  malformed(wasm(type0, func0, code(0x28, 0x80, 0x01, 0, 0x0b)), /invalid memory argument flags/);
  malformed(wasm(type0, func0, code(0x02, 0xc0, 0x7f, 0x0b, 0x0b)), /invalid block type/);
  malformed(wasm(type0, func0, code(0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b)), /vector length 4294967295 exceeds/);
});

test('memarg offsets are u32s of at most 5 bytes, as WebAssembly 2.0 says (V8 accepts longer ones)', () => {
  const type0 = section(1, vec([functype([], [])]));
  const func0 = section(3, vec([[0]]));
  const mem = section(5, vec([[0, 1]]));
  const load = (...offset: number[]) => wasm(type0, func0, mem, section(10, vec([body([], [0x41, 0, 0x28, 2, ...offset, 0x1a, 0x0b])])));
  assert.doesNotThrow(() => parseModule(load(0x82, 0x80, 0x80, 0x80, 0x00)));
  const six = load(0x82, 0x80, 0x80, 0x80, 0x80, 0x00);
  assert.equal(WebAssembly.validate(six), true);
  malformed(six, /LEB128 integer too long/);
  malformed(load(0x80, 0x80, 0x80, 0x80, 0x10), /LEB128 integer too large/);
});

/** Deterministic PRNG for the fuzz tests. */
function prng(seed: number): () => number {
  return () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
}

function parseOutcome(bytes: Uint8Array): ModuleInfo | Error {
  try {
    return parseModule(bytes);
  } catch (e) {
    if (e instanceof ModuleFormatError || e instanceof UnsupportedFeatureError) return e;
    throw new Error(`unexpected ${String(e)} for ${Buffer.from(bytes).toString('hex')}`, { cause: e });
  }
}

const fuzzSeeds = [
  rich,
  watToBinary(`(module (type $t (func (param i32) (result i32)))
    (import "env" "f" (func $imp (type $t))) (memory 1) (table 4 funcref)
    (global $g (mut i64) (i64.const -1))
    (func $a (type $t) (local f64 v128)
      (block $b (result i32) (loop $l (br_table $b $l $b (local.get 0) (local.get 0)))))
    (func $s (result v128) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (v128.const i32x4 1 2 3 4) (v128.load offset=16 (i32.const 0))))
    (func (result f32) (f32.const 1.5))
    (elem (i32.const 0) $a $imp) (data (i32.const 0) "hello")
    (export "a" (func $a)))`),
];

test('every prefix of a valid module parses or is a ModuleFormatError', () => {
  for (const seed of fuzzSeeds) {
    assert.ok(!(parseOutcome(seed) instanceof Error));
    for (let n = 0; n < seed.length; n++) {
      const outcome = parseOutcome(seed.subarray(0, n));
      if (outcome instanceof Error) assert.ok(outcome instanceof ModuleFormatError, `prefix ${n}: ${outcome.message}`);
    }
  }
});

test('random byte changes parse or throw ModuleFormatError/UnsupportedFeatureError', () => {
  const rand = prng(0x5eed);
  let refused = 0;
  let runs = 0;
  for (const seed of fuzzSeeds) {
    for (let i = 0; i < 3000; i++) {
      const bytes = seed.slice();
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) {
        const at = 8 + Math.floor(rand() * (bytes.length - 8));
        bytes[at] = rand() < 0.5 ? bytes[at] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
      }
      runs++;
      if (parseOutcome(bytes) instanceof Error) refused++;
    }
  }
  assert.ok(refused > 0 && refused < runs);
});

test('hostile lengths do not allocate or loop', () => {
  const huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
  for (const id of [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]) {
    const bytes = wasm([id, 5, ...huge]);
    assert.ok(parseOutcome(bytes) instanceof ModuleFormatError);
  }
  // A code body claiming a huge br_table inside a tiny body.
  const bytes = wasm(section(1, vec([functype([], [])])), section(3, vec([[0]])), section(10, vec([body([], [0x0e, ...huge])])));
  assert.ok(parseOutcome(bytes) instanceof ModuleFormatError);
});

test('V128 and other value types in signatures', () => {
  const info = parseModule(wasm(section(1, vec([functype([V128, FUNCREF, 0x6f], [F32])]))));
  assert.deepEqual(info.types[0], { params: ['v128', 'funcref', 'externref'], results: ['f32'] });
  assert.deepEqual(info.features, ['reference-types', 'simd']);
});
