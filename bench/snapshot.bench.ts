// Suspend, snapshot and restore: how soon a busy instance stops when asked,
// and what writing and reading a snapshot costs for 1 MiB and 64 MiB of
// touched memory (bench/guest/touch.wat), with the restore's module cache
// warm (the usual case: the program was prepared before) and cold.

import { createHash } from 'node:crypto';
import { nodeEngine } from '../src/host/engine.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import type { ProgramInstance } from '../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../src/host/snapshot.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import { Registry } from '../src/services/index.ts';
import { formatBytes, median, note, settle, spread, summarize, target, timeCpu, type BenchOptions, type Row } from './lib.ts';
import { benchWat, guest, programInstance } from './programs.ts';

const GROUP = 'snapshot';
const MiB = 2 ** 20;
/** Instance memory limit for the bench: room for the 64 MiB program. */
const MAX_PAGES = 2048;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An engine that notes when it starts running a slice, so that a restore
 * can be timed to the moment the program executes again.
 */
function markingEngine(): { engine: Engine; lastSlice: () => number } {
  let mark = 0;
  const engine = nodeEngine({
    schedule: (fn) =>
      setImmediate(() => {
        mark = performance.now();
        fn();
      }),
  });
  return { engine, lastSlice: () => mark };
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(1);
  }
}

/**
 * Suspend a busy instance again and again, at random moments. The request is
 * made from a timer, as a server's request handler would make it: the timer
 * fires only when the running slice ends, so the latency from the moment the
 * timer was due includes the rest of that slice.
 */
async function suspendRows(engine: Engine, cache: ModuleCache, name: string, bytes: Uint8Array, entry: string, samples: number): Promise<Row[]> {
  const compiled = await cache.get(bytes);
  let program = programInstance(engine, compiled, { function: entry });
  let done = program.run();
  const fromDue: number[] = [];
  const fromCall: number[] = [];
  while (fromDue.length < samples) {
    const wait = 2 + Math.floor(Math.random() * 15); // whole ms: timers have ms resolution
    const due = performance.now() + wait;
    const called = await new Promise<number>((resolve) =>
      setTimeout(() => {
        const t = performance.now();
        program.suspend();
        resolve(t);
      }, wait),
    );
    const status = await done;
    const end = performance.now();
    if (status.state === 'HALTED') {
      // The program finished before the request came: start it again, no sample.
      program = programInstance(engine, compiled, { function: entry });
      done = program.run();
      continue;
    }
    if (status.state !== 'SUSPENDED') throw new Error(`${name}: ${JSON.stringify(status)}`);
    // Node's timers run on a millisecond clock and may fire up to 1 ms before `due`.
    fromDue.push(Math.max(0, end - due));
    fromCall.push(end - called);
    done = program.run();
  }
  program.kill();
  await done;
  const d = summarize(fromDue);
  const c = summarize(fromCall);
  return [
    {
      group: GROUP,
      name: `suspend ${name}: request due → SUSPENDED (median)`,
      value: d.median,
      unit: 'ms',
      note: note(target(d.median, '<', 10, 'ms'), d.note, 'includes the rest of the running 5 ms slice; ±1 ms timer resolution'),
    },
    { group: GROUP, name: `suspend ${name}: request due → SUSPENDED (p99)`, value: d.p99, unit: 'ms', note: target(d.p99, '<', 10, 'ms') },
    { group: GROUP, name: `suspend ${name}: suspend() → SUSPENDED (median)`, value: c.median, unit: 'ms', note: c.note },
  ];
}

function memoryDigest(p: ProgramInstance): string {
  return createHash('sha256').update(p.instance.abi.bytes()).digest('hex');
}

async function snapshotRows(options: {
  touchedMiB: number;
  bytes: Uint8Array;
  samples: number;
  coldSamples: number;
  progress: (m: string) => void;
}): Promise<Row[]> {
  const { touchedMiB, bytes, samples, coldSamples, progress } = options;
  const label = `${touchedMiB} MiB`;
  const touched = touchedMiB * MiB;
  const { engine, lastSlice } = markingEngine();
  const cache = new ModuleCache(null);
  const prepare = { maxMemoryPages: MAX_PAGES };
  const compiled = await cache.get(bytes, prepare);

  progress(`${label}: touching memory, then suspending`);
  const program = programInstance(engine, compiled, { function: `touch_${touchedMiB}mib` });
  const done = program.run();
  await waitFor(() => {
    const m = program.instance.abi.bytes();
    return m.byteLength === touched && m[touched - 1] !== 0;
  }, `${label} to be touched`);
  program.suspend();
  const status = await done;
  if (status.state !== 'SUSPENDED') throw new Error(`touch ${label}: ${JSON.stringify(status)}`);
  const digest = memoryDigest(program);

  progress(`${label}: snapshot ${samples}x`);
  let file: Uint8Array = new Uint8Array(0);
  const snapshotMs: number[] = [];
  const snapshotCpu: number[] = [];
  for (let i = 0; i < samples; i++) {
    const first = file;
    const t = await timeCpu(async () => (file = await snapshotInstance(program)));
    snapshotMs.push(t.wall);
    snapshotCpu.push(t.cpu);
    if (i > 0 && !Buffer.from(first).equals(file)) throw new Error('snapshots of one state differ');
    await settle();
  }

  const restoreOptions = { engine, registry: new Registry(), context: { instance: 'bench-restored', scope: [] }, ...prepare };
  /** Restore, run until the first slice begins, suspend again; returns [to RUNNING, to first slice, CPU to RUNNING]. */
  const restoreOnce = async (c: ModuleCache, check = false): Promise<[number, number, number]> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const restored = await restoreInstance(file, { ...restoreOptions, cache: c });
    const running = restored.run();
    const queued = performance.now();
    const cpu = process.cpuUsage(c0);
    await waitFor(() => lastSlice() > queued, 'the first slice');
    const firstSlice = lastSlice();
    restored.suspend();
    const s = await running;
    if (s.state !== 'SUSPENDED') throw new Error(`restored ${label}: ${JSON.stringify(s)}`);
    if (check && memoryDigest(restored) !== digest) throw new Error(`restored ${label}: memory differs`);
    restored.kill();
    return [queued - t0, firstSlice - t0, (cpu.user + cpu.system) / 1000];
  };

  progress(`${label}: restore with a warm module cache ${samples}x`);
  await restoreOnce(cache, true); // the first restore prepares the snapshot's program part
  const warm: number[][] = [[], [], []];
  for (let i = 0; i < samples; i++) {
    const [a, b, c] = await restoreOnce(cache);
    warm[0].push(a);
    warm[1].push(b);
    warm[2].push(c);
    await settle();
  }
  progress(`${label}: restore with a cold module cache ${coldSamples}x`);
  const cold: number[] = [];
  for (let i = 0; i < coldSamples; i++) cold.push((await restoreOnce(new ModuleCache(null)))[0]);

  const snap = summarize(snapshotMs);
  const running = summarize(warm[0]);
  const sliced = summarize(warm[1]);
  const overhead = file.byteLength / touched - 1;
  const is1 = touchedMiB === 1;
  return [
    {
      group: GROUP,
      name: `${label}: snapshot (median)`,
      value: snap.median,
      unit: 'ms',
      note: note(
        is1 && target(snap.median, '<', 10, 'ms'),
        snap.note,
        `CPU median ${median(snapshotCpu).toFixed(1)} ms`,
        `${((touched / MiB / snap.median) * 1000).toFixed(0)} MiB/s`,
      ),
    },
    {
      group: GROUP,
      name: `${label}: snapshot file size`,
      value: file.byteLength / 1024,
      unit: 'KiB',
      note: note(
        `${overhead >= 0 ? '+' : ''}${(overhead * 100).toFixed(2)}% of touched memory`,
        `target within 5%: ${Math.abs(overhead) <= 0.05 ? 'met' : 'MISSED'}`,
        formatBytes(file.byteLength),
      ),
    },
    {
      group: GROUP,
      name: `${label}: restore → RUNNING, warm cache (median)`,
      value: running.median,
      unit: 'ms',
      note: note(
        is1 && target(running.median, '<', 10, 'ms'),
        running.note,
        `CPU median ${median(warm[2]).toFixed(1)} ms`,
        'read + check + instantiate + memory copy',
      ),
    },
    {
      group: GROUP,
      name: `${label}: restore → first slice runs, warm cache`,
      value: sliced.median,
      unit: 'ms',
      note: note(sliced.note, 'as above + the engine scheduling its slice'),
    },
    {
      group: GROUP,
      name: `${label}: restore → RUNNING, cold cache`,
      value: median(cold),
      unit: 'ms',
      note: note(spread(cold), "includes preparing the snapshot's program part"),
    },
  ];
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const engine = nodeEngine();
  const cache = new ModuleCache(null);
  const suspends = quick ? 10 : 100;
  progress(`suspend latency, ${suspends} samples each`);
  rows.push(...(await suspendRows(engine, cache, 'busy loop', guest('wat/loop.wasm'), 'spin', suspends)));
  rows.push(...(await suspendRows(engine, cache, 'hash.wasm', guest('examples/hash.wasm'), 'hash_debug', suspends)));

  const touch = await benchWat('touch');
  rows.push(...(await snapshotRows({ touchedMiB: 1, bytes: touch, samples: quick ? 3 : 20, coldSamples: quick ? 1 : 3, progress })));
  rows.push(...(await snapshotRows({ touchedMiB: 64, bytes: touch, samples: quick ? 1 : 5, coldSamples: 1, progress })));
  return rows;
}
