// The portable rewrite: its output is valid wherever its input is, and it
// numbers call sites the way Gate does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import binaryen from 'binaryen';
import { parseModule } from '../wasm/module.ts';
import { SPEC_SUITE_DIR } from '../wasm/testing.ts';
import { prepareModule, programSites } from './prepare.ts';
import { LIBRARY_SITES } from './call-sites.ts';
import { SITE_CALL, SITE_INDIRECT, SITE_LOOP } from './function-rewrite.ts';

function watToBinary(wat: string): Uint8Array {
  const m = binaryen.parseText(wat);
  m.setFeatures(binaryen.Features.MVP | binaryen.Features.Multivalue | binaryen.Features.BulkMemory | binaryen.Features.ReferenceTypes);
  try {
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

const haveSpec = existsSync(SPEC_SUITE_DIR);

test('every valid spec-suite module is still valid after the portable rewrite', { skip: haveSpec ? false : `spec suite not found at ${SPEC_SUITE_DIR}` }, async () => {
  let count = 0;
  for (const f of readdirSync(SPEC_SUITE_DIR).sort()) {
    if (!f.endsWith('.wasm')) continue;
    const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f)));
    if (!WebAssembly.validate(bytes)) continue;
    try {
      parseModule(bytes);
    } catch {
      continue; // malformed in 2.0 though V8 accepts it
    }
    for (const everything of [false, true]) {
      let prepared;
      try {
        prepared = await prepareModule(bytes, { abi: false, maxMemoryPages: 65536, everything });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_MODULE_FEATURE') continue; // two memories
        throw error;
      }
      assert.ok(WebAssembly.validate(prepared.bytes as BufferSource), `${f}${everything ? ' (everything)' : ''}`);
    }
    count++;
  }
  assert.ok(count > 1500, `${count} modules`);
});

test("Gate's ABI library: call sites behind io and fd_write as Gate's testdata snapshots show", () => {
  assert.equal(LIBRARY_SITES['gate.io'], 12);
  assert.equal(LIBRARY_SITES['wasi.fd_write'], 6);
});

test("call sites are numbered Gate's way", async () => {
  const bytes = watToBinary(`(module
    (type $t (func))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory 1)
    (table 1 funcref)
    (elem (i32.const 0) $g)
    (func $g (type $t) nop)
    (func $f (export "f") (param i32) (result i32) (local i32)
      (drop (i32.load (local.get 0)))
      (call $g)
      (loop $l
        (br_if $l (i32.div_s (local.get 0) (i32.const 3)))
        (br_if $l (local.get 0)))
      (block $b
        (loop $m
          (call $g)
          (br_if $m (local.get 0))))
      (call_indirect (type $t) (i32.const 0))
      (i32.const 0)))`);
  // Every call resumable, so that every call site has a key.
  const prepared = await prepareModule(bytes, { everything: true });
  const s = programSites(bytes, prepared.info);
  // Three entry-routine sites, the import's library body, then g and f.
  assert.deepEqual([...s.siteBase], [3, 3 + 6, 10, 20]);
  const f = s.sites[1]!;
  const byKind = (kind: number) => f.filter((x) => x.kind === kind);
  // f: entry 0, load 1, call 2, div_s 3 and 4, back-edge check 5, call 6, call_indirect 7..9.
  assert.deepEqual(byKind(SITE_CALL).map((x) => x.wag), [2, 6]);
  assert.deepEqual(byKind(SITE_INDIRECT).map((x) => x.wag), [9]);
  // Loop $l has a back-edge check (5); $m's back edge follows a call, so Gate gives it none: ours is extra.
  assert.deepEqual(
    byKind(SITE_LOOP).map((x) => [x.wag, x.extra]),
    [
      [5, -1],
      [-1, 0],
    ],
  );
  assert.equal(s.extraBase[1], 20);
});
