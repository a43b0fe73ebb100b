// Random valid modules from Binaryen's translate-to-fuzz, deterministic by
// seed: the seed gives the random bytes that wasm-opt turns into a module.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Random } from './random.ts';
import { wasmOpt } from './wasm-opt.ts';

/**
 * The features a generated module may use: what Gate accepts and Asyncify
 * can save. Reference types are left out (Asyncify cannot save reference
 * values; such modules are refused with a named error, see the spec runner).
 */
const FEATURE_FLAGS = [
  '--mvp-features',
  '--enable-sign-ext',
  '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int',
  '--enable-multivalue',
  '--enable-simd',
];
/**
 * Bulk memory brings passive data segments and table instructions, whose
 * state snapshots cannot hold yet; half of the modules go without it so that
 * snapshot restores are exercised too.
 */
const BULK_MEMORY_FLAGS = ['--enable-bulk-memory', '--enable-bulk-memory-opt'];

let scratch: string | undefined;

function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-fuzz-'));
    scratch = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

/** The module for a seed. --denan keeps NaN payloads (which engines may choose freely) out of results and memory. */
export async function generateModule(seed: number): Promise<Uint8Array> {
  const random = new Random(seed);
  const size = random.logInt(256, 16384);
  const features = random.chance(0.5) ? [...FEATURE_FLAGS, ...BULK_MEMORY_FLAGS] : FEATURE_FLAGS;
  const dir = scratchDir();
  const input = path.join(dir, `seed-${seed}.dat`);
  const output = path.join(dir, `seed-${seed}.wasm`);
  writeFileSync(input, random.bytes(size));
  try {
    await wasmOpt([input, '-ttf', '--denan', ...features, '-o', output]);
    return new Uint8Array(readFileSync(output));
  } finally {
    rmSync(input, { force: true });
    rmSync(output, { force: true });
  }
}
