// The spec runner's contract (npm run spec): four closing lines, trap causes
// asserted, a failure that is not a known difference exits 1, a missing
// suite exits 2. Runs on a small script made here, not on the suite.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { body, functype, I32, name, section, vec, wasm, u32 } from '../../src/runtime/wasm/testing.ts';
import { root } from '../helpers.ts';

const run = promisify(execFile);
const MAIN = path.join(root, 'scripts/spec/main.ts');

/** div(a, b) = a / b; count(n) loops n times and returns n. */
const module = wasm(
  section(1, vec([functype([I32, I32], [I32]), functype([I32], [I32])])),
  section(3, vec([u32(0), u32(1)])),
  section(7, vec([[...name('div'), 0, ...u32(0)], [...name('count'), 0, ...u32(1)]])),
  section(
    10,
    vec([
      body([], [0x20, 0, 0x20, 1, 0x6e, 0x0b]),
      // (local i) (block (loop (br_if 1 (i == n)) (i += 1) (br 0))) i
      body([[1, I32]], [0x02, 0x40, 0x03, 0x40, 0x20, 1, 0x20, 0, 0x46, 0x0d, 1, 0x20, 1, 0x41, 1, 0x6a, 0x21, 1, 0x0c, 0, 0x0b, 0x0b, 0x20, 1, 0x0b]),
    ]),
  ),
);

const i32 = (v: number) => ({ type: 'i32', value: String(v >>> 0) });

async function suite(commands: object[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gate-spec-'));
  await writeFile(path.join(dir, 'synthetic.0.wasm'), module);
  await writeFile(path.join(dir, 'synthetic.json'), JSON.stringify({ source_filename: 'synthetic.wast', commands }));
  return dir;
}

async function spec(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('every mode passes a script that V8 passes, and prints its closing line', async () => {
  const dir = await suite([
    { type: 'module', line: 1, filename: 'synthetic.0.wasm' },
    { type: 'assert_return', line: 2, action: { type: 'invoke', field: 'div', args: [i32(7), i32(2)] }, expected: [i32(3)] },
    { type: 'assert_trap', line: 3, action: { type: 'invoke', field: 'div', args: [i32(1), i32(0)] }, text: 'integer divide by zero', expected: [] },
    { type: 'assert_return', line: 4, action: { type: 'invoke', field: 'count', args: [i32(500)] }, expected: [i32(500)] },
    { type: 'assert_malformed', line: 5, filename: 'synthetic.1.wat', module_type: 'text', text: 'x' },
  ]);
  const { code, stdout } = await spec(dir, '--verbose');
  assert.equal(code, 0, stdout);
  for (const mode of ['plain', 'prepared', 'preempted', 'restored']) {
    assert.match(stdout, new RegExp(`^spec ${mode} synthetic\\.json: 4 passed, 0 failed, 1 skipped`, 'm'));
    assert.match(stdout, new RegExp(`^spec ${mode}: 4 passed, 0 failed, 1 skipped$`, 'm'));
  }
  // The loop of 500 iterations is suspended (and restored) many times.
  assert.match(stdout, /restored: \d{2,} suspensions, \d{2,} restores/);
});

test('a trap with another cause than its text maps to is a failure, and a new one exits 1', async () => {
  const dir = await suite([
    { type: 'module', line: 1, filename: 'synthetic.0.wasm' },
    { type: 'assert_trap', line: 2, action: { type: 'invoke', field: 'div', args: [i32(1), i32(0)] }, text: 'integer overflow', expected: [] },
    { type: 'assert_return', line: 3, action: { type: 'invoke', field: 'div', args: [i32(7), i32(2)] }, expected: [i32(4)] },
  ]);
  const { code, stdout } = await spec(dir, '--mode', 'plain,preempted');
  assert.equal(code, 1);
  assert.match(stdout, /^NEW plain synthetic\.json:2 .*expected trap INTEGER_OVERFLOW .*got trap INTEGER_DIVIDE_BY_ZERO/m);
  assert.match(stdout, /^NEW preempted synthetic\.json:3 .*expected "4", got 3/m);
  assert.match(stdout, /^spec plain: 1 passed, 2 failed, 0 skipped$/m);
  assert.match(stdout, /^spec preempted: 1 passed, 2 failed, 0 skipped$/m);
});

test('a missing suite is a clear error with exit status 2', async () => {
  const { code, stderr } = await spec(path.join(os.tmpdir(), 'no-such-spec-suite'));
  assert.equal(code, 2);
  assert.match(stderr, /spec suite is not at .*no-such-spec-suite/);
});
