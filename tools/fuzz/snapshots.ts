// Mutation fuzzing of the snapshot loader: snapshot files of real suspended
// and halted programs, mutated, then read and (when still readable) restored
// and run with fuel and time limits. Half of the bit-level mutations also fix
// up the file's digest, so that they reach the decoders behind the integrity
// check instead of stopping at it.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { decodeEngineState, DIGEST_SIZE, sha256, STATE_SECTION } from '../../src/runtime/snapshot/format.ts';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { parseModule } from '../../src/runtime/wasm/module.ts';
import { Registry } from '../../src/services/index.ts';
import type { MutationRunOptions } from './loader.ts';
import { mutate } from './mutate.ts';
import { clearErrorCode, count, describe, HangError, within, type MutationCounts } from './outcome.ts';
import { Random } from './random.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const HANG_MS = 60_000;

interface SeedSnapshot {
  bytes: Uint8Array;
  /** Offset of the digest in the file. */
  digestAt: number;
}

function digestOffset(bytes: Uint8Array): number {
  const info = parseModule(bytes);
  const section = info.customs.find((c) => c.name === STATE_SECTION)!;
  return section.payload.start + decodeEngineState(bytes, section.payload.start, section.payload.end).digestAt;
}

/** Snapshots of example programs: suspended in the middle of work, and halted. */
async function seedSnapshots(cache: ModuleCache, registry: Registry): Promise<SeedSnapshot[]> {
  const engine = nodeEngine();
  const out: SeedSnapshot[] = [];
  const take = async (file: string, fn: string, suspendAt: number | undefined): Promise<void> => {
    const compiled = await cache.get(new Uint8Array(readFileSync(path.join(root, 'guest', file))));
    const program = new ProgramInstance({ engine, compiled, registry, context: { instance: 'seed', scope: [] }, function: fn, debug: () => {} });
    if (suspendAt !== undefined) program.instance.suspendAfterFuel(suspendAt);
    await program.run();
    const bytes = await snapshotInstance(program);
    out.push({ bytes, digestAt: digestOffset(bytes) });
  };
  await take('examples/hash.wasm', 'hash_debug', 200_000);
  await take('examples/recurse.wasm', 'recurse', 50_000);
  await take('examples/hash.wasm', 'hash_debug', 5_000);
  await take('examples/hello.wasm', '', undefined);
  return out;
}

async function fixDigest(bytes: Uint8Array, at: number): Promise<void> {
  if (at + DIGEST_SIZE > bytes.length) return;
  bytes.fill(0, at, at + DIGEST_SIZE);
  bytes.set(await sha256(bytes), at);
}

export async function fuzzSnapshots(options: MutationRunOptions, counts: MutationCounts): Promise<void> {
  const random = new Random(options.seed ^ 0x5a9507);
  const cache = new ModuleCache(null);
  const registry = new Registry();
  const engine = nodeEngine();
  const seeds = await seedSnapshots(cache, registry);
  for (let i = 0; i < options.count && Date.now() < options.deadline; i++) {
    const seed = random.pick(seeds);
    let input: Uint8Array;
    if (random.chance(0.5)) {
      // In-place changes behind a valid digest.
      input = mutate(seed.bytes, random, random.pick(['bitflip', 'overwrite'] as const));
      await fixDigest(input, seed.digestAt);
    } else {
      input = mutate(seed.bytes, random);
    }
    counts.inputs++;
    const failed = (what: string): void => {
      mkdirSync(options.failures, { recursive: true });
      const saved = path.join(options.failures, `snapshot-${options.seed}-${i}.wasm`);
      writeFileSync(saved, input);
      counts.crashes.push({ input: 'snapshot', what, saved });
      options.log(`CRASH snapshot input ${i} (saved ${saved}): ${what}`);
    };
    try {
      await readSnapshot(input);
    } catch (error) {
      const code = clearErrorCode(error);
      if (code) count(counts, `read ${code}`);
      else failed(describe(error));
      continue;
    }
    try {
      const program = await within(
        HANG_MS,
        'restore',
        restoreInstance(input, {
          cache,
          engine,
          registry,
          context: { instance: `snapshot-${i}`, scope: [] },
          fuelLimit: 5_000_000,
          timeLimit: 5_000,
          debug: () => {},
        }),
      );
      const state = program.status.state;
      if (state !== 'SUSPENDED') {
        count(counts, `restored ${state}`);
        continue;
      }
      const status = await within(HANG_MS, 'restored run', program.run());
      if (status.cause === 'INTERNAL') failed(`status ${status.state} ${status.cause}: ${status.error}`);
      else if (engine.runnable !== 0) failed(`an instance is still queued after its run ended (${status.state})`);
      else count(counts, `run ${status.state}${status.cause !== 'NORMAL' ? ` ${status.cause}` : ''}${status.limit ? ` (${status.limit} limit)` : ''}`);
    } catch (error) {
      const code = clearErrorCode(error);
      if (code && !(error instanceof HangError)) count(counts, `restore ${code}`);
      else failed(describe(error));
    }
  }
}
