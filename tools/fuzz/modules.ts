// The differential module fuzzer: generated module i of a run with seed S is
// a function of (S, i) alone, and so is the way our engine's run of it is
// interrupted, so any failure can be replayed by its seeds.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { difference, exposeState, newEngine, runEngine, runPlain, type EngineStats, type Plan } from './differential.ts';
import { generateModule } from './generate.ts';
import { Random } from './random.ts';
import { reduceMismatch } from './reduce.ts';

export interface ModuleCounts {
  modules: number;
  /** Modules our preparation refused (with the reason's first words). */
  refused: Map<string, number>;
  /** Seeds for which Binaryen's generator itself failed (skipped). */
  generatorFailures: number;
  /** Modules in which a call exhausted the stack, so the comparison stopped there. */
  exhausted: number;
  mismatches: { seed: number; index: number; plan: Plan; message: string; saved?: string }[];
  stats: EngineStats;
}

/** Seed of module `index` in a run with `seed`. */
export function moduleSeed(seed: number, index: number): number {
  return (Math.imul(seed, 0x9e3779b1) + index * 0x85ebca6b) >>> 0;
}

/** How module `moduleSeed` is interrupted: not at all, in place, or through snapshots. */
export function planFor(moduleSeed: number): Plan {
  const random = new Random(moduleSeed ^ 0x5bd1e995);
  const mode = random.int(3);
  if (mode === 0) return { seed: moduleSeed, gap: 0, restore: 0, maxSuspensions: 0 };
  return { seed: moduleSeed, gap: random.logInt(1, 5000), restore: mode === 2 ? 0.5 : 0, maxSuspensions: 200 };
}

export function newModuleCounts(): ModuleCounts {
  return {
    modules: 0,
    refused: new Map(),
    generatorFailures: 0,
    exhausted: 0,
    mismatches: [],
    stats: { suspensions: 0, restores: 0, unsnapshottable: new Map() },
  };
}

export interface ModuleRunOptions {
  seed: number;
  /** Stop after this many modules. */
  count: number;
  /** Stop at this time (ms since the epoch). */
  deadline: number;
  /** Where mismatching modules are saved (and reduced, when `reduce`). */
  failures: string;
  reduce: boolean;
  /** Where reduced mismatches go (default test/fixtures/fuzz/). */
  fixtures?: string;
  log: (line: string) => void;
}

/** Generate and compare modules until the count or the deadline is reached. */
export async function fuzzModules(options: ModuleRunOptions, counts: ModuleCounts): Promise<void> {
  const engine = newEngine();
  for (let index = 0; index < options.count && Date.now() < options.deadline; index++) {
    const seed = moduleSeed(options.seed, index);
    let raw: Uint8Array;
    try {
      raw = await generateModule(seed);
    } catch (error) {
      counts.generatorFailures++;
      options.log(`NOTE wasm-opt -ttf failed for module ${index} (module seed ${seed}): ${(error as Error).message.slice(0, 300)}`);
      continue;
    }
    const bytes = exposeState(raw);
    const plan = planFor(seed);
    const plain = runPlain(bytes);
    const ours = await runEngine(bytes, plan, engine, counts.stats);
    counts.modules++;
    if (counts.modules % 1000 === 0) options.log(`  ... ${counts.modules} modules, ${counts.mismatches.length} mismatches`);
    const refused = ours.events[0]?.startsWith('prepare: ') ? ours.events[0] : undefined;
    if (refused) {
      const reason = refused.slice(9, 80);
      counts.refused.set(reason, (counts.refused.get(reason) ?? 0) + 1);
    }
    if (plain.exhausted || ours.exhausted) counts.exhausted++;
    const message = refused ? `refused: ${refused}` : difference(plain, ours);
    if (!message) continue;
    const mismatch: ModuleCounts['mismatches'][number] = { seed: options.seed, index, plan, message };
    counts.mismatches.push(mismatch);
    options.log(`MISMATCH module ${index} (run seed ${options.seed}, module seed ${seed}): ${message}`);
    mkdirSync(options.failures, { recursive: true });
    const file = path.join(options.failures, `module-${seed}.wasm`);
    writeFileSync(file, raw);
    writeFileSync(`${file}.json`, JSON.stringify({ plan, message }, null, 2) + '\n');
    mismatch.saved = file;
    if (options.reduce) {
      const reduced = await reduceMismatch(file, plan, options.log, options.fixtures);
      if (reduced) options.log(`  reduced to ${reduced}`);
    }
  }
}
