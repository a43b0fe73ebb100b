// Suspend anywhere, snapshot, restore elsewhere, finish: the program's output
// and final memory equal an uninterrupted run. Suspension points are chosen
// by fuel (deterministic for a seed); every restore uses a fresh engine and a
// fresh module cache, as another host would.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import type { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import type { Status } from '../../src/runtime/instance/status.ts';
import { Registry } from '../../src/services/index.ts';
import { launch, random, root } from '../helpers.ts';

const SEED = Number(process.env.GATE_TEST_SEED ?? 20261130);

interface Outcome {
  status: Status;
  log: string;
  memory: string; // sha-256 of final memory
  fuel: number;
  snapshots: number;
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Run to the end, suspending at each fuel point and continuing from a snapshot on a "new host". */
async function runThroughSnapshots(file: string, fn: string, points: number[]): Promise<Outcome> {
  const l = await launch(file, { function: fn });
  let program: ProgramInstance = l.program;
  let done = l.done;
  const logs: string[] = [];
  let log = l.log;
  let snapshots = 0;
  for (const point of points) {
    program.instance.suspendAfterFuel(point);
    const status = await done;
    if (status.state !== 'SUSPENDED') break;
    const snapshot = await snapshotInstance(program);
    snapshots++;
    logs.push(log());
    const chunks: Uint8Array[] = [];
    program = await restoreInstance(snapshot, {
      cache: new ModuleCache(null),
      engine: nodeEngine(),
      registry: new Registry(),
      context: { instance: crypto.randomUUID(), scope: [] },
      debug: (c) => chunks.push(c),
    });
    log = () => Buffer.concat(chunks).toString();
    done = program.run();
  }
  const status = await done;
  logs.push(log());
  return {
    status,
    log: logs.join(''),
    memory: digest(program.instance.capture().memory),
    fuel: program.instance.fuelConsumed,
    snapshots,
  };
}

async function checkProgram(file: string, fn: string, count: number, ends: Partial<Status> = { state: 'HALTED' }): Promise<void> {
  const plain = await runThroughSnapshots(file, fn, []);
  assert.deepEqual({ ...plain.status, ...ends }, plain.status);
  const next = random(SEED ^ file.length ^ fn.length);
  const points = Array.from({ length: count }, () => Math.floor(next() * plain.fuel)).sort((a, b) => a - b);
  const moved = await runThroughSnapshots(file, fn, points);
  assert.deepEqual(moved.status, plain.status);
  assert.equal(moved.log, plain.log);
  assert.equal(moved.memory, plain.memory, 'final memory');
  assert.equal(moved.fuel, plain.fuel, 'fuel used');
  assert.ok(moved.snapshots >= count - 2, `only ${moved.snapshots} of ${count} suspensions took effect`);
}

describe(`snapshot property (seed ${SEED})`, () => {
  it('a CPU-heavy hash loop', () => checkProgram('examples/hash.wasm', 'hash_debug', 25));
  it('a deep recursive computation', () => checkProgram('examples/recurse.wasm', 'recurse', 25));
  it('a state-integrity checker', () => checkProgram('examples/integrity.wasm', 'check', 25));
  it('a program with a start section', () => checkProgram('wat/start.wasm', 'after', 3));
  it('a switch of nested blocks with calls in its cases (one rewind test for the whole nest)', () => checkProgram('wat/switch.wasm', 'run', 40));
  it('counted loops, charged before they run, beside loops that keep their checks', () => checkProgram('wat/counted.wasm', 'run', 30));
  it('a program that changes its tables and drops segments, with references on its stack', () =>
    checkProgram('wat/tables.wasm', 'run', 25, { state: 'KILLED', cause: 'MEMORY_ACCESS_OUT_OF_BOUNDS' }));

  it('a counter keeps counting across snapshots with nothing lost or repeated', async () => {
    const l = await launch('examples/counter.wasm', { function: 'debug_count', timeResolution: 1000 });
    let program: ProgramInstance = l.program;
    let done = l.done;
    const logs: string[] = [];
    let log = l.log;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 150));
      program.suspend();
      assert.equal((await done).state, 'SUSPENDED');
      logs.push(log());
      const chunks: Uint8Array[] = [];
      program = await restoreInstance(await snapshotInstance(program), {
        cache: new ModuleCache(null),
        engine: nodeEngine(),
        registry: new Registry(),
        context: { instance: crypto.randomUUID(), scope: [] },
        debug: (c) => chunks.push(c),
      });
      log = () => Buffer.concat(chunks).toString();
      done = program.run();
    }
    await new Promise((r) => setTimeout(r, 150));
    program.kill();
    await done;
    logs.push(log());
    const lines = logs.join('').split('\n').filter((x) => x !== '');
    assert.ok(lines.length >= 5, `only ${lines.length} ticks`);
    lines.forEach((line, i) => assert.equal(line, String(i)));
  });

  it('restores in another process', async () => {
    const l = await launch('examples/hash.wasm', { function: 'hash_debug' });
    l.program.instance.suspendAfterFuel(50_000_000);
    assert.equal((await l.done).state, 'SUSPENDED');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gate-snapshot-'));
    const file = path.join(dir, 'hash.snapshot.wasm');
    await writeFile(file, await snapshotInstance(l.program));
    const script = path.join(root, 'test/snapshot/restore-child.ts');
    const { stdout } = await promisify(execFile)(process.execPath, [script, file], { timeout: 60000 });
    assert.deepEqual(JSON.parse(stdout), {
      status: { state: 'HALTED', cause: 'NORMAL', result: 0 },
      log: 'c16b02b158899315b165a22ba9385cee557172daf8789475abb4cd682c46ca56\n',
    });
  });
});
