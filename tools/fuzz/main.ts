// npm run fuzz [-- --seconds N --seed S --modules N --mutations N --ci]
//
// Differential fuzzing of our engine against plain V8 on modules from
// Binaryen's translate-to-fuzz, and mutation fuzzing of the module loader,
// the packet parser and the snapshot loader. Prints counts and rates; exits
// 1 on any mismatch or crash (the inputs are saved, mismatches reduced into
// test/fixtures/fuzz/), 2 on bad usage.

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzLoader } from './loader.ts';
import { fuzzModules, newModuleCounts } from './modules.ts';
import { newMutationCounts, type MutationCounts } from './outcome.ts';
import { fuzzPackets } from './packets.ts';
import { fuzzSnapshots } from './snapshots.ts';

/** The CI batch: fixed seed, fixed counts. */
const CI = { seed: 20261201, modules: 400, mutations: 6000 };

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--seconds N] [--seed S] [--modules N] [--mutations N] [--ci] [--failures DIR] [--no-reduce] [--only modules|loader|packets|snapshots]\n`);
  process.exit(2);
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) usage(`--${name} must be a non-negative integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      seconds: { type: 'string' },
      seed: { type: 'string' },
      modules: { type: 'string' },
      mutations: { type: 'string' },
      ci: { type: 'boolean', default: false },
      failures: { type: 'string' },
      'no-reduce': { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
    },
    strict: true,
  });
} catch (error) {
  usage((error as Error).message);
}
const v = parsed.values;
const ci = v.ci ?? false;
const seconds = positiveInt('seconds', v.seconds) ?? (ci ? 3600 : 60);
const seed = positiveInt('seed', v.seed) ?? (ci ? CI.seed : Date.now() % 1_000_000_007);
const moduleCount = positiveInt('modules', v.modules) ?? (ci ? CI.modules : Infinity);
const mutationCount = positiveInt('mutations', v.mutations) ?? (ci ? CI.mutations : Infinity);
const failures = v.failures ?? path.join(os.tmpdir(), `gate-fuzz-failures-${seed}`);
const parts = new Set(v.only ?? ['modules', 'loader', 'packets', 'snapshots']);
for (const p of parts) if (!['modules', 'loader', 'packets', 'snapshots'].includes(p)) usage(`unknown part ${p}`);

const log = (line: string): void => {
  process.stdout.write(line + '\n');
};
const began = Date.now();
const end = began + seconds * 1000;
log(`fuzz seed ${seed}${ci ? ' (CI batch)' : ''}: ${Number.isFinite(moduleCount) ? moduleCount : 'unlimited'} modules, ${Number.isFinite(mutationCount) ? mutationCount : 'unlimited'} mutated inputs, at most ${seconds} s`);

// Time is shared: half for generated modules, the rest split over the three parsers.
const mutationParts = ['loader', 'packets', 'snapshots'].filter((p) => parts.has(p));
const moduleShare = parts.has('modules') ? (mutationParts.length > 0 ? 0.5 : 1) : 0;

const rate = (n: number, ms: number): string => `${((n * 1000) / Math.max(1, ms)).toFixed(1)}/s`;
const breakdown = (m: Map<string, number>): string =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

let failed = false;
if (parts.has('modules')) {
  const counts = newModuleCounts();
  const t = Date.now();
  await fuzzModules(
    {
      seed,
      count: moduleCount,
      deadline: began + (end - began) * moduleShare,
      failures,
      reduce: !v['no-reduce'],
      // A CI batch leaves the work tree alone: its reductions go with the other failures.
      fixtures: ci ? path.join(failures, 'reduced') : undefined,
      log,
    },
    counts,
  );
  const ms = Date.now() - t;
  const s = counts.stats;
  log(
    `fuzz modules: ${counts.modules} generated and compared, ${counts.mismatches.length} mismatches; ` +
      `${s.suspensions} suspensions, ${s.restores} snapshot restores; ${counts.exhausted} stopped at stack exhaustion; ` +
      `${counts.generatorFailures} generator failures; ${ms} ms, ${rate(counts.modules, ms)}`,
  );
  if (s.unsnapshottable.size > 0) log(`  suspended in place only (snapshots cannot hold): ${breakdown(s.unsnapshottable)}`);
  if (counts.mismatches.length > 0) failed = true;
}

const perPart = mutationCount / Math.max(1, mutationParts.length);
const runners: Record<string, typeof fuzzLoader> = { loader: fuzzLoader, packets: fuzzPackets, snapshots: fuzzSnapshots };
let total = 0;
const t0 = Date.now();
for (const [i, part] of mutationParts.entries()) {
  const counts: MutationCounts = newMutationCounts();
  const t = Date.now();
  // Each part gets an equal share of what time is left.
  const deadline = t + (end - t) / (mutationParts.length - i);
  await runners[part]({ seed, count: Math.ceil(perPart), deadline, failures, log }, counts);
  const ms = Date.now() - t;
  total += counts.inputs;
  log(`fuzz ${part}: ${counts.inputs} mutated inputs, ${counts.crashes.length} crashes; ${ms} ms, ${rate(counts.inputs, ms)}`);
  log(`  outcomes: ${breakdown(counts.outcomes)}`);
  if (counts.crashes.length > 0) failed = true;
}
if (mutationParts.length > 0) log(`fuzz mutations: ${total} inputs in all, ${rate(total, Date.now() - t0)}`);
log(`fuzz ${failed ? 'FAILED' : 'passed'} in ${((Date.now() - began) / 1000).toFixed(1)} s${failed ? `; inputs saved in ${failures}` : ''}`);
process.exit(failed ? 1 : 0);
