import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CodeReader, Op } from '../wasm/instructions.ts';
import { parseModule } from '../wasm/module.ts';
import { countedLoop } from './counted-loop.ts';

const bytes = new Uint8Array(readFileSync(new URL('../../../guest/wat/counted.wasm', import.meta.url)));
const info = parseModule(bytes);

/** The analysis of the first loop of an exported function, with locals set to constants in the code before it. */
function analyse(name: string): ReturnType<typeof countedLoop> {
  const exp = info.exports.find((e) => e.name === name && e.kind === 'func');
  assert.ok(exp, name);
  const body = info.code[exp.index - info.importedFunctions];
  const reader = new CodeReader(bytes);
  reader.reset(body.instructions, body.range.end);
  const constants = new Map<number, number>();
  let constant: number | undefined;
  for (;;) {
    const op = reader.next();
    if (op === Op.Loop) return countedLoop(new CodeReader(bytes), reader.pos, body.range.end, (l) => constants.get(l));
    if (op === Op.LocalSet && constant !== undefined) constants.set(reader.index, constant);
    else if (op === Op.LocalSet) constants.delete(reader.index);
    constant = op === Op.I32Const ? reader.value : undefined;
  }
}

// What each function's loop really does: plain V8 runs it and returns its iterations.
const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes), { wasi_snapshot_preview1: { fd_write: () => 0 } });
const ran = (name: string): number => (plain.exports[name] as () => number)();

test('counted loops: the iterations found are the iterations run, in every shape', () => {
  for (const name of ['ne_up', 'down_tee', 'lt_s', 'lt_u_wide', 'wrap', 'rotated', 'rotated_after', 'costly']) {
    assert.equal(analyse(name)?.iterations, ran(name), name);
  }
});

test('loops that only look counted are refused', () => {
  for (const name of ['twice', 'from_global', 'two_edges', 'long']) assert.equal(analyse(name), null, name);
});

test("a counted loop's cost is its instructions", () => {
  // ne_up: local.get, i32.const, i32.add, local.set; local.get, i32.const, i32.add, local.tee, i32.const, i32.ne, br_if.
  assert.equal(analyse('ne_up')?.cost, 11);
});
