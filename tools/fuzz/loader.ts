// Mutation fuzzing of the module loader: our binary parser and the whole
// preparation (validation, ABI check, fuel, Asyncify), and for a share of the
// mutants that are still accepted, a run with fuel and time limits.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeEngine } from '../../src/host/engine.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { prepareModule } from '../../src/runtime/prepare/prepare.ts';
import { parseModule } from '../../src/runtime/wasm/module.ts';
import { Registry } from '../../src/services/index.ts';
import { generateModule } from './generate.ts';
import { mutate } from './mutate.ts';
import { clearErrorCode, count, describe, HangError, within, type MutationCounts } from './outcome.ts';
import { Random } from './random.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

/** Well-formed modules to start from: the example programs and a few generated ones. */
export async function seedModules(seed: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const dir of ['guest/examples', 'guest/wat']) {
    let names: string[] = [];
    try {
      names = readdirSync(path.join(root, dir)).filter((n) => n.endsWith('.wasm')).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const bytes = new Uint8Array(readFileSync(path.join(root, dir, n)));
      if (bytes.byteLength <= 256 * 1024) out.push(bytes);
    }
  }
  out.push(new Uint8Array(readFileSync(path.join(here, 'guest/send.wasm'))));
  for (let i = 0; i < 4; i++) out.push(await generateModule((seed + i * 7919) >>> 0));
  return out;
}

export interface MutationRunOptions {
  seed: number;
  count: number;
  deadline: number;
  failures: string;
  log: (line: string) => void;
}

const RUN_SHARE = 0.25;
const HANG_MS = 60_000;

function crash(counts: MutationCounts, options: MutationRunOptions, name: string, input: Uint8Array, what: string): void {
  mkdirSync(options.failures, { recursive: true });
  const saved = path.join(options.failures, `${name}-${counts.inputs}.bin`);
  writeFileSync(saved, input);
  counts.crashes.push({ input: name, what, saved });
  options.log(`CRASH ${name} input ${counts.inputs - 1} (saved ${saved}): ${what}`);
}

export async function fuzzLoader(options: MutationRunOptions, counts: MutationCounts): Promise<void> {
  const seeds = await seedModules(options.seed);
  const random = new Random(options.seed ^ 0x10ade5);
  const engine = nodeEngine();
  const registry = new Registry();
  for (let i = 0; i < options.count && Date.now() < options.deadline; i++) {
    const original = random.pick(seeds);
    let input = mutate(original, random);
    if (random.chance(0.2)) input = mutate(input, random);
    counts.inputs++;

    try {
      parseModule(input);
      count(counts, 'parse accepted');
    } catch (error) {
      const code = clearErrorCode(error);
      if (!code) {
        crash(counts, options, 'module-parse', input, describe(error));
        continue;
      }
      count(counts, `parse ${code}`);
    }

    let prepared;
    // Gate programs are checked against the ABI; the rest as the spec suite's modules are.
    const abi = random.chance(0.8);
    try {
      prepared = await within(HANG_MS, 'preparation', prepareModule(input, { abi }));
      count(counts, 'prepare accepted');
    } catch (error) {
      const code = clearErrorCode(error);
      if (!code || error instanceof HangError) {
        crash(counts, options, 'module-prepare', input, describe(error));
      } else {
        count(counts, `prepare ${code}`);
        if (code === 'ERR_PREPARE_FAILED') {
          // A module that V8 accepts but our instrumentation cannot handle: not a crash, but worth a look.
          mkdirSync(options.failures, { recursive: true });
          const saved = path.join(options.failures, `module-prepare-failed-${counts.inputs}.wasm`);
          writeFileSync(saved, input);
          options.log(`NOTE valid module refused by instrumentation (saved ${saved}): ${(error as Error).message}`);
        }
      }
      continue;
    }
    if (!abi || !random.chance(RUN_SHARE)) continue;

    try {
      const compiled = { prepared, module: await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>), program: input };
      const program = new ProgramInstance({
        engine,
        compiled,
        registry,
        context: { instance: `fuzz-${i}`, scope: [] },
        fuelLimit: 2_000_000,
        timeLimit: 2_000,
      });
      const status = await within(HANG_MS, 'run', program.run());
      if (status.cause === 'INTERNAL') {
        crash(counts, options, 'module-run', input, `status ${status.state} ${status.cause}: ${status.error}`);
        continue;
      }
      if (engine.runnable !== 0) {
        crash(counts, options, 'module-run', input, `an instance is still queued after its run ended (${status.state})`);
        continue;
      }
      count(counts, `run ${status.state}${status.cause !== 'NORMAL' ? ` ${status.cause}` : ''}${status.limit ? ` (${status.limit} limit)` : ''}`);
    } catch (error) {
      const code = clearErrorCode(error);
      if (!code || error instanceof HangError) crash(counts, options, 'module-run', input, describe(error));
      else count(counts, `run ${code}`);
    }
  }
}
