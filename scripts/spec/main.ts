// npm run spec [-- DIR] [--verbose] [--mode M[,M...]] [--only TEXT] [--budget N] [--restore-limit N]
//
// Runs every command of every script of the WebAssembly spec suite in four
// modes (plain V8, prepared, preempted, restored: see engine-store.ts) and
// prints a closing line per mode. Exits 1 when a command fails that is not
// listed in known-differences.json (a new difference), 2 when a DIR given is
// not there; without DIR and without the suite it says it skipped (exit 0).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../src/runtime/instance/engine.ts';
import { EngineStore, PreparedCache } from './engine-store.ts';
import { PlainStore } from './plain.ts';
import { runScript, type CommandResult, type ScriptResult } from './run-script.ts';
import { readScript } from './script.ts';
import { MODES, type ModeName, type Store } from './store.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
/** Where the suite is by default: beside the repository, as the project's shared folder lays it out. */
const DEFAULT_DIR = path.resolve(root, '../shared/wasm-spec-tests/json');
const SUITE_ORIGIN = 'github.com/WebAssembly/testsuite at 3a04b2cf93bd8fce277458d419eea8d9c326345c, each .wast converted by wast2json into DIR/NAME.json';
const KNOWN_FILE = path.join(here, 'known-differences.json');
/** Fuel between suspensions in the preempted and restored modes: a few dozen instructions. */
const DEFAULT_BUDGET = 40;
/**
 * Restores per call at every suspension before only the 2^k-th ones are
 * restored: a few loops in the suite suspend 10^5 times in one call, and a
 * restore costs about a millisecond. --restore-limit 0 restores at every one.
 */
const DEFAULT_RESTORE_LIMIT = 64;

interface KnownDifference {
  file: string;
  line: number;
  modes: ModeName[];
  reason: string;
}

interface Options {
  dir: string;
  verbose: boolean;
  modes: ModeName[];
  only?: string;
  budget: number;
  restoreLimit: number;
}

function usage(message: string): never {
  process.stderr.write(`spec: ${message}\nusage: npm run spec [-- DIR] [--verbose] [--mode plain,prepared,preempted,restored] [--only TEXT] [--budget N] [--restore-limit N]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { dir: DEFAULT_DIR, verbose: false, modes: [...MODES], budget: DEFAULT_BUDGET, restoreLimit: DEFAULT_RESTORE_LIMIT };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--verbose' || a === '-v') options.verbose = true;
    else if (a === '--mode') {
      options.modes = value().split(',') as ModeName[];
      for (const m of options.modes) if (!MODES.includes(m)) usage(`unknown mode ${m}`);
    } else if (a === '--only') options.only = value();
    else if (a === '--budget') {
      options.budget = Number(value());
      if (!Number.isInteger(options.budget) || options.budget < 1) usage('--budget needs a positive integer');
    } else if (a === '--restore-limit') {
      options.restoreLimit = Number(value());
      if (!Number.isInteger(options.restoreLimit) || options.restoreLimit < 0) usage('--restore-limit needs an integer >= 0');
    } else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else options.dir = path.resolve(a);
  }
  return options;
}

function loadKnown(): Map<string, KnownDifference> {
  const list = JSON.parse(readFileSync(KNOWN_FILE, 'utf8')) as KnownDifference[];
  return new Map(list.map((k) => [`${k.file}:${k.line}`, k]));
}

function tally(results: readonly CommandResult[]): Record<'passed' | 'failed' | 'skipped', number> {
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const r of results) t[r.verdict]++;
  return t;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.dir)) {
    if (options.dir === DEFAULT_DIR) {
      // A clone of the repository alone has no suite: say so and pass (README.md says how to make one).
      process.stdout.write(`spec: skipped: no WebAssembly spec suite at ${options.dir} (${SUITE_ORIGIN}; or npm run spec -- DIR)\n`);
      return 0;
    }
    process.stderr.write(`spec: the spec suite is not at ${options.dir} (${SUITE_ORIGIN})\n`);
    return 2;
  }
  const files = readdirSync(options.dir)
    .filter((f) => f.endsWith('.json') && (!options.only || f.includes(options.only)))
    .sort();
  if (files.length === 0) {
    process.stderr.write(`spec: no scripts (*.json) in ${options.dir}\n`);
    return 2;
  }
  const known = loadKnown();
  const seenKnown = new Set<string>();
  const cache = new PreparedCache();
  const engine = new Engine({ schedule: (fn) => queueMicrotask(fn) });
  const started = performance.now();
  let newDifferences = 0;

  for (const mode of options.modes) {
    const modeStarted = performance.now();
    const store: Store = mode === 'plain' ? new PlainStore() : new EngineStore({ mode, engine, cache, budget: options.budget, restoreLimit: options.restoreLimit });
    const all: ScriptResult[] = [];
    const skipReasons = new Map<string, number>();
    for (const file of files) {
      const before = store instanceof EngineStore ? store.stats.suspensions : 0;
      const result = await runScript(options.dir, readScript(options.dir, file), store);
      all.push(result);
      const t = tally(result.results);
      if (options.verbose) {
        const suspended = store instanceof EngineStore && mode !== 'prepared' ? ` (${store.stats.suspensions - before} suspensions)` : '';
        console.log(`spec ${mode} ${file}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped${suspended}`);
      }
      for (const r of result.results) {
        if (r.verdict === 'skipped') skipReasons.set(r.detail!, (skipReasons.get(r.detail!) ?? 0) + 1);
        if (r.verdict !== 'failed') continue;
        const key = `${file}:${r.rootLine}`;
        const k = known.get(key);
        if (k && k.modes.includes(mode)) {
          seenKnown.add(`${key} ${mode}`);
          continue;
        }
        newDifferences++;
        console.log(`NEW ${mode} ${file}:${r.line} (command ${r.index}, ${r.type}): ${r.detail}`);
      }
    }
    const t = tally(all.flatMap((r) => r.results));
    for (const [reason, n] of [...skipReasons].sort((a, b) => b[1] - a[1])) console.log(`  ${mode} skipped ${n}: ${reason}`);
    if (store instanceof EngineStore) {
      const s = store.stats;
      console.log(
        `  ${mode}: ${s.suspensions} suspensions` +
          (mode === 'restored' ? `, ${s.restores} restores from ${(s.snapshotBytes / 1e6).toFixed(1)} MB of snapshots, ${s.resumedInPlace} resumed in place past the restore limit` : ''),
      );
    }
    console.log(`  ${mode}: ${((performance.now() - modeStarted) / 1000).toFixed(1)} s`);
    console.log(`spec ${mode}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  }

  for (const [key, k] of known) {
    if (options.only && !k.file.includes(options.only)) continue;
    for (const mode of k.modes) {
      if (options.modes.includes(mode) && !seenKnown.has(`${key} ${mode}`)) console.log(`known difference no longer seen: ${key} ${mode} (${k.reason})`);
    }
  }
  console.log(`spec: ${files.length} scripts, ${cache.prepared} modules prepared, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (newDifferences > 0) {
    console.log(`spec: ${newDifferences} failures not in ${path.relative(root, KNOWN_FILE)}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
