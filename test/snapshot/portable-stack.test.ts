// Snapshots carry the suspended stack as Gate's portable stack (gate.stack):
// what we write is a stack Gate's importer accepts, and Gate's own snapshots
// continue here.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { programSites } from '../../src/runtime/prepare/prepare.ts';
import { SITE_CALL, SITE_ENTRY, SITE_INDIRECT } from '../../src/runtime/prepare/function-rewrite.ts';
import { V128 } from '../../src/runtime/prepare/operand-types.ts';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { parseModule } from '../../src/runtime/wasm/module.ts';
import { Registry } from '../../src/services/index.ts';
import { launch, root, until } from '../helpers.ts';

/** The payload of a custom section. */
function customSection(bytes: Uint8Array, name: string): Uint8Array | undefined {
  const info = parseModule(bytes);
  const c = info.customs.find((x) => x.name === name);
  return c && bytes.slice(c.payload.start, c.payload.end);
}

const words = (types: readonly number[]) => types.reduce((n, t) => n + (t === V128 ? 2 : 1), 0);

describe('portable stacks', () => {
  it('a snapshot we write holds a stack Gate would accept: sizes, call sites, callees, entry frame last', async () => {
    for (const fuel of [20_000, 1_234_567, 9_876_543]) {
      const l = await launch('examples/hash.wasm', { function: 'hash_debug' });
      l.program.instance.suspendAfterFuel(fuel);
      assert.equal((await l.done).state, 'SUSPENDED');
      const file = await snapshotInstance(l.program);
      const stack = customSection(file, 'gate.stack');
      assert.ok(stack, 'gate.stack section');
      const { program } = await readSnapshot(file);
      const s = programSites(program, l.program.compiled.prepared.info);
      const view = new DataView(stack.buffer, stack.byteOffset, stack.byteLength);
      const total = s.siteBase[s.siteBase.length - 1];
      let p = 0;
      let frames = 0;
      let innerFunction = -1;
      for (;;) {
        const index = view.getUint32(p, true);
        const offset = view.getUint32(p + 4, true);
        if (index < 3) {
          assert.equal(index, 2, 'the entry function is running');
          assert.equal(offset, 0);
          assert.equal(p + 8, stack.byteLength, 'the entry routine frame is last');
          break;
        }
        assert.ok(index < s.extraBase[s.extraBase.length - 1], `call site ${index} in range`);
        // Find the function and its site.
        let f = 0;
        if (index < total) while (s.siteBase[f + 1] <= index) f++;
        else {
          let i = 0;
          while (s.extraBase[i + 1] <= index) i++;
          f = s.importedFunctions + i;
        }
        const list = s.sites[f - s.importedFunctions]!;
        const site = list.find((x) => (index < total ? x.wag === index - s.siteBase[f] : x.extra === index - s.extraBase[f - s.importedFunctions]))!;
        assert.ok(site, `a resumable site at ${index}`);
        const expected = site.kind === SITE_ENTRY ? 8 : 8 * (1 + words(site.types) + words(s.locals[f - s.importedFunctions]));
        assert.equal(offset, expected, `frame size at call site ${index}`);
        if (frames > 0) {
          assert.ok(site.kind === SITE_CALL || site.kind === SITE_INDIRECT, 'outer frames are at calls');
          if (site.kind === SITE_CALL) assert.equal(site.target, innerFunction, 'the call reaches the frame inside it');
        }
        innerFunction = f;
        frames++;
        p += offset;
      }
      assert.ok(frames >= 1);
      l.program.instance.kill();
    }
  });
});

// Gate's testdata snapshots (snapshot.amd64.wasm.gz, snapshot.arm64.wasm.gz in
// Gate's repository) are Gate's own files, which this repository does not
// carry: set GATE_TESTDATA to that testdata directory (or check Gate out
// beside this repository) to run these.
const testdata = process.env.GATE_TESTDATA ?? path.join(root, '..', 'gate', 'testdata');
const gateFile = (arch: string): Uint8Array => gunzipSync(readFileSync(path.join(testdata, `snapshot.${arch}.wasm.gz`)));
const haveTestdata = existsSync(path.join(testdata, 'snapshot.amd64.wasm.gz'));

describe("Gate's own snapshots", { skip: haveTestdata ? false : `Gate's testdata not found at ${testdata} (set GATE_TESTDATA)` }, () => {
  for (const arch of ['amd64', 'arm64']) {
    it(`snapshot.${arch}.wasm continues its loop`, async () => {
      const chunks: Uint8Array[] = [];
      const p = await restoreInstance(gateFile(arch), {
        cache: new ModuleCache(null),
        engine: nodeEngine(),
        registry: new Registry(),
        context: { instance: crypto.randomUUID(), scope: [] },
        debug: (c) => chunks.push(c),
      });
      assert.equal(p.status.state, 'SUSPENDED');
      const done = p.run();
      const log = () => Buffer.concat(chunks).toString();
      await until(() => log().includes('suspend.cpp running: 3\n'), 20_000, 'three turns of the loop');
      p.instance.kill();
      assert.equal((await done).state, 'KILLED');
      // The arm64 copy was inside the log call of turn 1; amd64 inside turn 0's delay.
      assert.match(log(), /^suspend\.cpp running: 1\nsuspend\.cpp running: 2\nsuspend\.cpp running: 3\n/);
    });
  }
});
