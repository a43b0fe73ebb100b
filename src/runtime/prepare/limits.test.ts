import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseModule } from '../wasm/module.ts';
import { body, FUNCREF, functype, I32, name, section, SPEC_SUITE_DIR, u32, vec, wasm, type Bytes } from '../wasm/testing.ts';
import { checkModuleLimits, lowerTableMaxima, MODULE_LIMITS, operandStackDepths, savedStackValues, tableBytes, TABLE_ENTRY_BYTES } from './limits.ts';
import { prepareModule } from './prepare.ts';

const guestDir = new URL('../../../guest/', import.meta.url).pathname;

/** One function () -> () with the given locals and code (give the final end). */
function oneFunction(code: Bytes, locals: [number, number][] = [], types: Bytes[] = [functype([], [])]): Uint8Array<ArrayBuffer> {
  return wasm(section(1, vec(types)), section(3, vec([[0]])), section(10, vec([body(locals, code)])));
}

/** n constants, then n-1 additions: the stack holds n values at its deepest. */
function constants(n: number): Bytes {
  const code: Bytes = [];
  for (let i = 0; i < n; i++) code.push(0x41, 1);
  for (let i = 1; i < n; i++) code.push(0x6a);
  return [...code, 0x1a, 0x0b];
}

function check(bytes: Uint8Array): void {
  checkModuleLimits(bytes, parseModule(bytes));
}

test('operand stack depth is measured by block structure and arity', () => {
  const depths = (code: Bytes, types?: Bytes[]) => operandStackDepths(oneFunction(code, [], types), parseModule(oneFunction(code, [], types)));
  assert.deepEqual(depths(constants(7)), [7]);
  // block (result i32) of 3 values inside 2 outer values: 5.
  assert.deepEqual(depths([0x41, 1, 0x41, 1, 0x02, I32, 0x41, 1, 0x41, 1, 0x41, 1, 0x6a, 0x6a, 0x0b, 0x6a, 0x6a, 0x1a, 0x0b]), [5]);
  // Unreachable code after br pops below nothing; the depth is that of the live code.
  assert.deepEqual(depths([0x02, 0x40, 0x0c, 0, 0x6a, 0x6a, 0x6a, 0x0b, 0x41, 1, 0x1a, 0x0b]), [1]);
  // if with a parameter (type 1: i32 -> i32): the else branch starts with the parameter again.
  const typed = [functype([], []), functype([I32], [I32])];
  assert.deepEqual(depths([0x41, 1, 0x41, 1, 0x04, 1, 0x41, 1, 0x6a, 0x05, 0x41, 2, 0x41, 3, 0x6a, 0x6a, 0x0b, 0x1a, 0x0b], typed), [3]);
  // SIMD: two vectors, i32x4.add, i32x4.extract_lane 0: 2; three vectors into v128.bitselect: 3.
  const v128 = [0xfd, 0x0c, ...new Array(16).fill(0)];
  assert.deepEqual(depths([...v128, ...v128, 0xfd, 0xae, 0x01, 0xfd, 0x1b, 0, 0x1a, 0x0b]), [2]);
  assert.deepEqual(depths([...v128, ...v128, ...v128, 0xfd, 0x52, 0x1a, 0x0b]), [3]);
});

test('a function deeper than the limit is refused before any instrumentation', async () => {
  check(oneFunction(constants(MODULE_LIMITS.stackDepth)));
  const deep = oneFunction(constants(MODULE_LIMITS.stackDepth + 1));
  assert.throws(() => check(deep), {
    name: 'PrepareError',
    code: 'ERR_MODULE_LIMIT',
    message: 'function 0 holds more than 1024 values on its operand stack; the limit is 1024',
  });
  // The attack of the issue: 5,000 call results, then their sum. Refused at once.
  const calls: Bytes = [];
  for (let i = 0; i < 5000; i++) calls.push(0x10, 0);
  for (let i = 1; i < 5000; i++) calls.push(0x6a);
  const attack = wasm(
    section(1, vec([functype([], [I32]), functype([], [])])),
    section(2, vec([[...name('env'), ...name('f'), 0, 0]])),
    section(3, vec([[1]])),
    section(10, vec([body([], [...calls, 0x1a, 0x0b])])),
  );
  await assert.rejects(prepareModule(attack, { abi: false }), { code: 'ERR_MODULE_LIMIT' });
});

test('operand stack values at suspension points are bounded over the module', () => {
  // 200 call results in a function (20,000 live values at its calls), copies of it.
  const calls = (n: number): Bytes => {
    const code: Bytes = [];
    for (let i = 0; i < n; i++) code.push(0x10, 0);
    for (let i = 1; i < n; i++) code.push(0x6a);
    return [...code, 0x1a, 0x0b];
  };
  const copies = (k: number) =>
    wasm(
      section(1, vec([functype([], [I32]), functype([], [])])),
      section(3, vec([[0], ...Array.from({ length: k }, () => [1])])),
      section(10, vec([body([], [0x41, 1, 0x0b]), ...Array.from({ length: k }, () => body([], calls(200)))])),
    );
  check(copies(3));
  assert.throws(() => check(copies(4)), {
    message: /^module holds more than \d+ operand stack values at its calls, loops and bulk operations \(by function 4\); the limit is 65536 plus one per byte of the module$/,
  });
});

test('locals, function size and tables have limits', () => {
  check(oneFunction([0x0b], [[MODULE_LIMITS.locals, I32]]));
  assert.throws(() => check(oneFunction([0x0b], [[MODULE_LIMITS.locals - 1, I32], [2, I32]])), {
    message: 'function 0 has 8191 locals; the limit is 8190',
  });
  const big = oneFunction([...new Array(MODULE_LIMITS.functionSize).fill(0x01), 0x0b]);
  assert.throws(() => check(big), { message: /^function 0 is 4194306 bytes; the limit is 4194304$/ });
  const tables = (n: number, initial: number, max?: number) =>
    wasm(section(4, vec(Array.from({ length: n }, () => [FUNCREF, ...(max === undefined ? [0, ...u32(initial)] : [1, ...u32(initial), ...u32(max)])]))));
  check(tables(16, 10));
  assert.throws(() => check(tables(17, 10)), { message: 'module has 17 tables; the limit is 16' });
  // The 48-byte module: (table 10000000 funcref).
  assert.throws(() => check(tables(1, 10_000_000)), { message: 'table 0 has 10000000 initial entries; the limit is 1000000' });
});

test('tables get the entry limit as their maximum, and their cost is counted', () => {
  const noMax = wasm(section(4, vec([[FUNCREF, 0, 10]])));
  const lowered = lowerTableMaxima(noMax, parseModule(noMax));
  const info = parseModule(lowered);
  assert.deepEqual(info.tables, [{ element: 'funcref', initial: 10, maximum: MODULE_LIMITS.tableEntries }]);
  assert.equal(tableBytes(parseModule(noMax)), MODULE_LIMITS.tableEntries * TABLE_ENTRY_BYTES);
  const small = wasm(section(4, vec([[FUNCREF, 1, 10, 20]])));
  assert.equal(lowerTableMaxima(small, parseModule(small)), small, 'a table within the limit is left alone');
  assert.equal(tableBytes(parseModule(small)), 20 * TABLE_ENTRY_BYTES);
  // V8 now refuses to grow it past the limit.
  const grow = wasm(
    section(1, vec([functype([I32], [I32])])),
    section(3, vec([[0]])),
    section(4, vec([[FUNCREF, 0, 0]])),
    section(7, vec([[...name('grow'), 0, 0]])),
    section(10, vec([body([], [0xd0, FUNCREF, 0x20, 0, 0xfc, 15, 0, 0x0b])])),
  );
  const exports = new WebAssembly.Instance(new WebAssembly.Module(lowerTableMaxima(grow, parseModule(grow)) as Uint8Array<ArrayBuffer>)).exports as { grow: (n: number) => number };
  assert.equal(exports.grow(MODULE_LIMITS.tableEntries + 1), -1);
  assert.equal(exports.grow(10), 0);
});

test('real programs and the spec suite are far within the limits', () => {
  for (const f of readdirSync(join(guestDir, 'examples')).filter((n) => n.endsWith('.wasm'))) {
    check(new Uint8Array(readFileSync(join(guestDir, 'examples', f))));
  }
  const sqlite = new Uint8Array(readFileSync(join(guestDir, 'sqlite', 'sqlite.wasm')));
  check(sqlite);
  const sqliteInfo = parseModule(sqlite);
  assert.ok(Math.max(...operandStackDepths(sqlite, sqliteInfo)) < MODULE_LIMITS.stackDepth / 32);
  assert.ok(savedStackValues(sqlite, sqliteInfo).reduce((a, b) => a + b, 0) < MODULE_LIMITS.savedValues / 32);
  if (!existsSync(SPEC_SUITE_DIR)) return;
  let deepest = 0;
  for (const f of readdirSync(SPEC_SUITE_DIR).filter((n) => n.endsWith('.wasm'))) {
    const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f)));
    if (!WebAssembly.validate(bytes)) continue;
    let info;
    try {
      info = parseModule(bytes);
    } catch {
      continue; // features we refuse anyway
    }
    if (info.tables.length > MODULE_LIMITS.tables || info.tables.some((t) => t.initial > MODULE_LIMITS.tableEntries)) continue;
    check(bytes);
    deepest = Math.max(deepest, ...operandStackDepths(bytes, info), 0);
  }
  assert.ok(deepest < MODULE_LIMITS.stackDepth / 4, `deepest spec stack ${deepest}`);
});
