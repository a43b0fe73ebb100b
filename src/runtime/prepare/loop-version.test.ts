import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CodeReader, Op } from '../wasm/instructions.ts';
import { parseModule } from '../wasm/module.ts';
import { scanLoop } from './counted-loop.ts';
import { versionedLoop } from './loop-version.ts';
import { prepareModule } from './prepare.ts';

const bytes = new Uint8Array(readFileSync(new URL('../../../guest/wat/versioned.wasm', import.meta.url)));
const info = parseModule(bytes);

/** The analysis of the first loop of an exported function (or the instructions of its body). */
function analyse(name: string): ReturnType<typeof versionedLoop>;
function analyse(name: string, size: true): number;
function analyse(name: string, size?: true): ReturnType<typeof versionedLoop> | number {
  const exp = info.exports.find((e) => e.name === name && e.kind === 'func');
  assert.ok(exp, name);
  const body = info.code[exp.index - info.importedFunctions];
  const reader = new CodeReader(bytes);
  reader.reset(body.instructions, body.range.end);
  for (;;) {
    if (reader.next() !== Op.Loop) continue;
    if (size) return scanLoop(new CodeReader(bytes), reader.pos, body.range.end)!.cost;
    return versionedLoop(new CodeReader(bytes), reader.pos, body.range.end);
  }
}

/** What each function's loop does, in i32 arithmetic: its iterations, or null past `cap`. */
const reference: Record<string, (i: number, b: number, cap: number) => number | null> = {
  ne_up2: (i, b, cap) => count(cap, () => ((i = (i + 2) | 0), b !== i)),
  lt_s3: (i, b, cap) => count(cap, () => ((i = (i + 3) | 0), i < b)),
  le_u1: (i, b, cap) => count(cap, () => ((i = (i + 1) | 0), i >>> 0 <= b >>> 0)),
  gt_s_down: (i, b, cap) => count(cap, () => ((i = (i - 1) | 0), b < i)),
  ge_u_down4: (i, b, cap) => count(cap, () => ((i = (i - 4) | 0), i >>> 0 >= b >>> 0)),
  rotated5: (i, b, cap) => count(cap, () => (i >= b ? false : ((i = (i + 5) | 0), true))),
  tee_down: (i, _b, cap) => count(cap, () => (i = (i - 1) | 0) !== 0),
  ne_down3: (i, b, cap) => count(cap, () => (i = (i - 3) | 0) !== b),
  early: (i) => {
    // Returns the increments made: 700 when it leaves early.
    let n = 0;
    while (n < 700) {
      n++;
      i = (i + 1) | 0;
      if (i >= 1000) break;
    }
    return n;
  },
  le_max: (i, _b, cap) => count(cap, () => ((i = (i + 1) | 0), i <= 0x7fffffff)),
};

/** Iterations of a loop whose body ends by asking `goOn`, or null past cap. */
function count(cap: number, goOn: () => boolean): number | null {
  for (let n = 1; n <= cap; n++) if (!goOn()) return n;
  return null;
}

test('versioned loops: every shape of the fixture is found; a constant bound that wraps and a second way out are refused', () => {
  for (const name of ['ne_up2', 'lt_s3', 'le_u1', 'gt_s_down', 'ge_u_down4', 'rotated5', 'tee_down', 'ne_down3']) {
    assert.ok(analyse(name), name);
  }
  assert.equal(analyse('le_max'), null);
  assert.equal(analyse('early'), null, 'a loop with another way out');
  assert.deepEqual(analyse('ne_up2'), { counter: 0, step: 2, after: true, rel: 0x47, boundLocal: 1, boundValue: 0 });
  assert.deepEqual(analyse('rotated5'), { counter: 0, step: 5, after: false, rel: 0x48, boundLocal: 1, boundValue: 0 });
});

test('a versioned loop runs exactly as written and never past the fuel charged for it', async () => {
  const prepared = await prepareModule(bytes, { abi: false, maxMemoryPages: 16 });
  const module = new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>);
  // A bare engine: the tick ends the call (as a preemption would), nothing else is used.
  class Tick extends Error {}
  const engine: Record<string, unknown> = { unwind: new WebAssembly.Tag({ parameters: [] }), memory: new WebAssembly.Memory({ initial: 16, maximum: 16 }) };
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module === 'gate_engine' && i.kind === 'function') {
      engine[i.name] = () => {
        if (i.name === 'tick') throw new Tick();
        return 0;
      };
    }
  }
  const instance = new WebAssembly.Instance(module, { gate_engine: engine as WebAssembly.ModuleImports, wasi_snapshot_preview1: { fd_write: () => 0 } });
  const fuel = instance.exports['gate_engine.fuel'] as WebAssembly.Global;
  const edges = [0, 1, 2, 3, 4, 5, 7, 100, 999, 1000, 4096, -1, -2, -3, -4, 0x7fffffff, 0x7ffffffe, 0x7ffffffc, -0x80000000, -0x7fffffff, 0x7ffffff0, -0x7ffffff0];
  const FUEL = 100_000;
  let checked = 0;
  for (const [name, ref] of Object.entries(reference)) {
    const fn = instance.exports[name] as (i: number, b: number) => number;
    // Instructions an iteration runs (early's skips its `br $out` but the last).
    const size = analyse(name, true) - (name === 'early' ? 1 : 0);
    for (const i of edges) {
      for (const d of [0, 1, 2, 3, 4, 6, 9, 10, 12, 97, 300, 3000, 50_000, -1, -2, -3, -6, -97, -3000]) {
        const b = (i + d) | 0;
        const expected = ref(i, b, FUEL);
        fuel.value = FUEL;
        let got: number | 'tick';
        try {
          got = fn(i, b);
        } catch (error) {
          if (!(error instanceof Tick)) throw error;
          got = 'tick';
        }
        const at = `${name}(${i}, ${b})`;
        if (got === 'tick') {
          // Preempted: only a loop that would have run past its fuel may be.
          assert.ok(expected === null || expected > FUEL / 32, `${at}: preempted after ${FUEL - (fuel.value as number)} units, yet it ends after ${expected} iterations`);
        } else {
          assert.equal(got, expected, at);
          // Each iteration is charged at least its instructions.
          const used = FUEL - (fuel.value as number);
          assert.ok(used >= got * size, `${at}: ${got} iterations of ${size} instructions for ${used} units`);
        }
        checked++;
      }
    }
  }
  assert.ok(checked > 4000);
});
