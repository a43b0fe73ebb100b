// The module loader's speed: decoding every code body of the WebAssembly
// spec suite's modules (when the suite is beside the repository), parsing
// a 1 MB function, and our rewrite of the largest spec module and of a
// generated 1 MB module (parse alone against parse + rewrite).

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rewriteBytes } from '../src/runtime/prepare/rewrite.ts';
import { CodeReader, scanBody } from '../src/runtime/wasm/instructions.ts';
import { parseModule } from '../src/runtime/wasm/module.ts';
import { body, functype, I32, section, SPEC_SUITE_DIR, vec, wasm } from '../src/runtime/wasm/testing.ts';
import { median, spread, type BenchOptions, type Row } from './lib.ts';

const GROUP = 'parse';
/** Rewrite options for modules outside Gate's ABI: nothing blocks; imports have an entry site each. */
const REWRITE = { blockingImports: new Set<number>(), librarySites: () => 1 };

/** Milliseconds per call of fn: the median of rounds, after one warm-up call. */
function perCall(fn: () => unknown, rounds: number): { ms: number; samples: number[] } {
  fn();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return { ms: median(samples), samples };
}

function specRows(rounds: number): Row[] {
  if (!existsSync(SPEC_SUITE_DIR)) return [{ group: GROUP, name: 'spec suite', value: 0, unit: '', note: `skipped: not at ${SPEC_SUITE_DIR}` }];
  const modules = readdirSync(SPEC_SUITE_DIR)
    .filter((f) => f.endsWith('.wasm'))
    .map((f) => ({ f, bytes: new Uint8Array(readFileSync(join(SPEC_SUITE_DIR, f))) }))
    .filter((m) => WebAssembly.validate(m.bytes));
  const bodies = modules.flatMap((m) => parseModule(m.bytes).code.map((b) => [m.bytes, b.instructions, b.range.end] as const));
  const bytes = bodies.reduce((n, [, start, end]) => n + end - start, 0);
  const decode = perCall(() => {
    for (const [m, start, end] of bodies) scanBody(new CodeReader(m), start, end);
  }, rounds);
  const largest = modules.reduce((a, b) => (statSync(join(SPEC_SUITE_DIR, b.f)).size > statSync(join(SPEC_SUITE_DIR, a.f)).size ? b : a));
  const parse = perCall(() => parseModule(largest.bytes), rounds * 10);
  const fuel = perCall(() => rewriteBytes(largest.bytes, REWRITE), rounds * 10);
  return [
    { group: GROUP, name: `decode all spec code bodies (${bodies.length})`, value: bytes / 1e3 / decode.ms, unit: 'MB/s', note: `${(bytes / 1e6).toFixed(1)} MB; ${spread(decode.samples)}` },
    { group: GROUP, name: `parse ${largest.f} (${largest.bytes.length} B)`, value: parse.ms, unit: 'ms', note: spread(parse.samples) },
    { group: GROUP, name: `parse + rewrite ${largest.f}`, value: fuel.ms, unit: 'ms', note: spread(fuel.samples) },
  ];
}

function generatedRows(rounds: number): Row[] {
  // One function of 1 MB of mixed instructions.
  const unit = [0x20, 0x00, 0x41, 0xe8, 0x07, 0x6a, 0x21, 0x00, 0x23, 0x00, 0x1a, 0x28, 0x02, 0x10, 0x1a];
  const code: number[] = [];
  while (code.length < 1_000_000) code.push(...unit);
  code.push(0x0b);
  const one = wasm(section(1, vec([functype([], [])])), section(3, vec([[0]])), section(10, vec([body([[1, 0x7f]], code)])));
  // 2000 functions of about 500 bytes, with loops and calls.
  const fn: number[] = [0x03, 0x40, 0x20, 0, 0x10, 0, 0x1a, 0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b];
  while (fn.length < 480) fn.push(0x20, 0, 0x41, 3, 0x6c, 0x21, 0, 0x20, 0, 0x1a);
  fn.push(0x20, 0, 0x0b);
  const bodies = Array.from({ length: 2000 }, () => body([], fn));
  const many = wasm(section(1, vec([functype([I32], [I32])])), section(3, vec(bodies.map(() => [0]))), section(10, vec(bodies)));
  const oneParse = perCall(() => parseModule(one), rounds);
  const manyParse = perCall(() => parseModule(many), rounds);
  const manyFuel = perCall(() => rewriteBytes(many, REWRITE), rounds);
  const mb = (b: Uint8Array) => `${(b.length / 1e6).toFixed(2)} MB`;
  return [
    { group: GROUP, name: 'parse one 1 MB function', value: oneParse.ms, unit: 'ms', note: `${mb(one)}; ${spread(oneParse.samples)}` },
    { group: GROUP, name: 'parse 2000 functions', value: manyParse.ms, unit: 'ms', note: `${mb(many)}; ${spread(manyParse.samples)}` },
    { group: GROUP, name: 'parse + rewrite 2000 functions', value: manyFuel.ms, unit: 'ms', note: spread(manyFuel.samples) },
  ];
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const rounds = quick ? 2 : 9;
  progress('parse: spec suite');
  const rows = specRows(rounds);
  progress('parse: generated modules');
  return [...rows, ...generatedRows(rounds)];
}
