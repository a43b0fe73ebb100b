// Replays the saved differential-fuzzing cases (test/fixtures/fuzz/): each is
// a module from Binaryen's translate-to-fuzz with the plan of suspensions and
// snapshot restores it was run with. Our engine must agree with plain V8 on
// every logged value, result, trap, exported global and the final memory.
// Also replays the module-loader cases (test/fixtures/fuzz/loader/): valid
// modules the mutation fuzzer found preparation to mishandle, each with the
// outcome it should have (a `todo` until it does), and the snapshot-loader
// cases (test/fixtures/fuzz/snapshot/): mutated snapshot files that must be
// refused with a named error.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { prepareModule } from '../../src/runtime/prepare/prepare.ts';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { difference, exposeState, newEngine, runEngine, runPlain, type Plan } from '../../tools/fuzz/differential.ts';
import { root } from '../helpers.ts';

const dir = path.join(root, 'test/fixtures/fuzz');
const cases = readdirSync(dir)
  .filter((n) => n.endsWith('.wasm'))
  .sort();

describe('differential fuzzing regressions', () => {
  it('has saved cases', () => assert.ok(cases.length > 0));

  for (const name of cases) {
    const meta = JSON.parse(readFileSync(path.join(dir, name.replace(/\.wasm$/, '.json')), 'utf8')) as { plan: Plan; note?: string };
    it(`${name}${meta.note ? `: ${meta.note}` : ''}`, async () => {
      const bytes = exposeState(new Uint8Array(readFileSync(path.join(dir, name))));
      const stats = { suspensions: 0, restores: 0, unsnapshottable: new Map<string, number>() };
      const plain = runPlain(bytes);
      const ours = await runEngine(bytes, meta.plan, newEngine(), stats);
      assert.equal(difference(plain, ours), undefined);
      if (meta.plan.gap > 0) assert.ok(stats.suspensions > 0, 'the plan suspended the run');
      if (meta.plan.restore > 0) assert.ok(stats.restores > 0, 'the plan restored from a snapshot');
    });
  }

  it('notices a difference in what was logged, returned or left in memory', async () => {
    const name = cases.find((n) => n.endsWith('.wasm'))!;
    const bytes = exposeState(new Uint8Array(readFileSync(path.join(dir, name))));
    const plain = runPlain(bytes);
    assert.equal(difference(plain, structuredClone(plain)), undefined);
    const changed = structuredClone(plain);
    changed.events[0] = `${changed.events[0]}!`;
    assert.match(difference(plain, changed)!, /^event 0:/);
    const shorter = structuredClone(plain);
    shorter.events.pop();
    assert.match(difference(plain, shorter)!, /^events:/);
    if (plain.memory && plain.memory.byteLength > 0) {
      const memory = structuredClone(plain);
      memory.memory![memory.memory!.byteLength - 1] ^= 1;
      assert.match(difference(plain, memory)!, /^memory at/);
    }
  });
});

describe('module loader fuzzing regressions', () => {
  const loaderDir = path.join(dir, 'loader');
  const loaderCases = readdirSync(loaderDir)
    .filter((n) => n.endsWith('.wasm'))
    .sort();
  for (const name of loaderCases) {
    const meta = JSON.parse(readFileSync(path.join(loaderDir, name.replace(/\.wasm$/, '.json')), 'utf8')) as { expect: string; todo?: string };
    it(`${name}: ${meta.expect === 'accepted' ? 'accepted' : `refused with ${meta.expect}`}`, { todo: meta.todo }, async () => {
      const bytes = new Uint8Array(readFileSync(path.join(loaderDir, name)));
      assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), 'the case is a valid module');
      const outcome = await prepareModule(bytes).then(
        () => 'accepted',
        (error: { code?: string }) => error.code ?? String(error),
      );
      assert.equal(outcome, meta.expect);
    });
  }
});

describe('snapshot loader fuzzing regressions', () => {
  it('a snapshot whose program code cannot be read is refused as an invalid module (it threw a bare Error)', async () => {
    const bytes = new Uint8Array(readFileSync(path.join(dir, 'snapshot/invalid-program-code.wasm')));
    await assert.rejects(readSnapshot(bytes), { code: 'ERR_MODULE_INVALID', message: 'invalid module: type index 58 out of range' });
  });
});
