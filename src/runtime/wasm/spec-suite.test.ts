// The parser and decoder against every binary module of the WebAssembly spec
// suite (read in place; the test skips when the suite is absent).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModuleFormatError, UnsupportedFeatureError } from './binary.ts';
import { parseModule } from './module.ts';
import { SPEC_SUITE_DIR } from './testing.ts';

const present = existsSync(SPEC_SUITE_DIR);
const skip = present ? false : `spec suite not found at ${SPEC_SUITE_DIR}`;

interface Command {
  type: string;
  filename?: string;
  module_type?: string;
  text?: string;
}

test('every module V8 accepts parses and decodes; refusals are ModuleFormatErrors', { skip }, () => {
  let accepted = 0;
  let refusedByV8 = 0;
  let refusedByUs = 0;
  const failures: string[] = [];
  const t0 = performance.now();
  let bytesTotal = 0;
  for (const f of readdirSync(SPEC_SUITE_DIR).sort()) {
    if (!f.endsWith('.wasm')) continue;
    const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f)));
    bytesTotal += bytes.length;
    const valid = WebAssembly.validate(bytes);
    try {
      const info = parseModule(bytes);
      if (valid) accepted++;
      assert.equal(info.code.length, info.functions.length);
    } catch (e) {
      if (!(e instanceof ModuleFormatError || e instanceof UnsupportedFeatureError)) failures.push(`${f}: unexpected ${String(e)}`);
      // Over-long integers that V8 (decoding memory offsets as memory64 does) accepts: malformed in 2.0.
      else if (valid && /LEB128 integer too long/.test(e.message)) refusedByUs++;
      else if (valid) failures.push(`${f}: V8 accepts it, we refuse: ${e.message}`);
      else refusedByUs++;
    }
    if (!valid) refusedByV8++;
  }
  const ms = performance.now() - t0;
  console.log(
    `spec modules: ${accepted} valid ones parsed; of ${refusedByV8} that V8 refuses we refuse ${refusedByUs} ` +
      `(the rest are invalid, not malformed: validation catches them). ${(bytesTotal / 1e3).toFixed(0)} KB in ${ms.toFixed(0)} ms including V8 validation`,
  );
  assert.deepEqual(failures, []);
  assert.ok(accepted > 1500);
});

test('binary modules the spec calls malformed are refused by the parser', { skip }, () => {
  const accepted: string[] = [];
  let total = 0;
  for (const script of readdirSync(SPEC_SUITE_DIR).filter((f) => f.endsWith('.json'))) {
    const { commands } = JSON.parse(readFileSync(join(SPEC_SUITE_DIR, script), 'utf8')) as { commands: Command[] };
    for (const c of commands) {
      if (c.type !== 'assert_malformed' || c.module_type !== 'binary' || !c.filename) continue;
      total++;
      const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, c.filename)));
      try {
        parseModule(bytes);
        accepted.push(`${c.filename} (${c.text}; V8 ${WebAssembly.validate(bytes) ? 'accepts' : 'refuses'})`);
      } catch (e) {
        assert.ok(e instanceof ModuleFormatError || e instanceof UnsupportedFeatureError, String(e));
      }
    }
  }
  console.log(`assert_malformed binaries: ${total - accepted.length} of ${total} refused by the parser`);
  for (const a of accepted) console.log(`  parsed anyway: ${a}`);
  // Only the encodings that multi-memory (a memory index where 2.0 has a zero
  // byte) and memory64 (u64 memarg offsets) made well-formed get through.
  for (const a of accepted) assert.match(a, /zero byte expected|integer representation too long; V8 accepts/);
});

test('every prefix of the smaller spec modules parses or is a ModuleFormatError', { skip }, () => {
  let prefixes = 0;
  for (const f of readdirSync(SPEC_SUITE_DIR).sort()) {
    if (!f.endsWith('.wasm')) continue;
    const bytes = new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f)));
    if (bytes.length > 1000 || !WebAssembly.validate(bytes)) continue;
    for (let n = 0; n < bytes.length; n++) {
      prefixes++;
      try {
        parseModule(bytes.subarray(0, n));
      } catch (e) {
        if (!(e instanceof ModuleFormatError)) assert.fail(`${f} prefix ${n}: ${String(e)}`);
      }
    }
  }
  assert.ok(prefixes > 10000);
});
