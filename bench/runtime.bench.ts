// The runtime's costs at run time: execution speed of instrumented programs
// against the same programs straight on V8 (fuel checks, Asyncify, time
// slices and the engine's scheduling all included), and how soon a cached
// program answers its first client.

import { nodeEngine } from '../src/host/engine.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import { interleave, median, note, settle, spread, summarize, target, type BenchOptions, type Row } from './lib.ts';
import { addFuel } from '../src/runtime/prepare/fuel.ts';
import { benchWat, guest, programInstance, runInstrumentedDirect, runPlain, textLog } from './programs.ts';

const GROUP = 'runtime';

interface CpuSubject {
  name: string;
  bytes: Uint8Array;
  entry: string;
  /** Target ratio, when the issue sets one. */
  target?: number;
}

/** Median of the per-round ratios: rounds are interleaved, so each pair saw the same machine load. */
function pairedRatio(samples: readonly number[], baseline: readonly number[]): { ratio: number; range: string } {
  const ratios = samples.map((v, i) => v / baseline[i]);
  return { ratio: median(ratios), range: `per-round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}` };
}

async function cpuRows(engine: Engine, cache: ModuleCache, s: CpuSubject, rounds: number): Promise<Row[]> {
  const plainModule = await WebAssembly.compile(s.bytes as Uint8Array<ArrayBuffer>);
  const fuelModule = await WebAssembly.compile(addFuel(s.bytes));
  const compiled = await cache.get(s.bytes);
  const expected = runPlain(plainModule, s.entry);
  let got = '';
  const samples = await interleave(
    {
      plain: () => runPlain(plainModule, s.entry),
      fuel: () => runInstrumentedDirect(fuelModule, s.entry),
      prepared: () => runInstrumentedDirect(compiled.module, s.entry, compiled.prepared.info.memory),
      engine: async () => {
        const log = textLog();
        const status = await programInstance(engine, compiled, { function: s.entry, debug: log.sink }).run();
        if (status.state !== 'HALTED') throw new Error(`${s.name}: ${JSON.stringify(status)}`);
        got = log.text();
      },
    },
    rounds,
  );
  if (got.replace(/\n$/, '') !== expected.replace(/\n$/, '')) throw new Error(`${s.name}: instrumented run computed something else`);
  // Ratios of CPU time (robust when other work shares the machine), wall-time ratio beside.
  const fuel = pairedRatio(samples.fuel.cpu, samples.plain.cpu);
  const prepared = pairedRatio(samples.prepared.cpu, samples.plain.cpu);
  const full = pairedRatio(samples.engine.cpu, samples.plain.cpu);
  const fullWall = pairedRatio(samples.engine.wall, samples.plain.wall);
  const times = (v: { wall: number[]; cpu: number[] }) => `CPU median ${median(v.cpu).toFixed(0)} ms; wall ${spread(v.wall)}`;
  return [
    { group: GROUP, name: `${s.name}: plain V8`, value: median(samples.plain.wall), unit: 'ms', note: times(samples.plain) },
    { group: GROUP, name: `${s.name}: instrumented, in the engine`, value: median(samples.engine.wall), unit: 'ms', note: times(samples.engine) },
    {
      group: GROUP,
      name: `${s.name}: instrumented / plain`,
      value: full.ratio,
      unit: 'x',
      note: note(
        s.target !== undefined && target(full.ratio, '≤', s.target, 'x'),
        `CPU time, ${full.range}`,
        `wall time ${fullWall.ratio.toFixed(2)}x`,
        'fuel + Asyncify + 5 ms slices',
      ),
    },
    {
      group: GROUP,
      name: `${s.name}:   of which fuel checks alone`,
      value: fuel.ratio,
      unit: 'x',
      note: note(`CPU time, ${fuel.range}`, 'fuel-rewritten module, tick never unwinds, no engine'),
    },
    {
      group: GROUP,
      name: `${s.name}:   fuel + Asyncify, no engine`,
      value: prepared.ratio,
      unit: 'x',
      note: note(`CPU time, ${prepared.range}`, 'prepared module run directly, tick never unwinds'),
    },
  ];
}

/** Instantiate hello from the cached module and time its first output byte (and its halt). */
async function helloRows(engine: Engine, cache: ModuleCache, quick: boolean): Promise<Row[]> {
  const compiled = await cache.get(guest('examples/hello.wasm'));
  const firstOutput: number[] = [];
  const halted: number[] = [];
  const warmup = quick ? 5 : 50;
  const samples = quick ? 30 : 500;
  for (let i = 0; i < warmup + samples; i++) {
    let first = 0;
    const t0 = performance.now();
    const program = programInstance(engine, compiled, { function: 'greet' });
    const done = program.run();
    const output = new WritableStream<Uint8Array>({
      write() {
        first ||= performance.now();
      },
    });
    const joined = program.connect(null, output);
    const status = await done;
    const end = performance.now();
    await joined;
    if (status.state !== 'HALTED' || first === 0) throw new Error(`hello: ${JSON.stringify(status)}, output ${first !== 0}`);
    if (i >= warmup) {
      firstOutput.push(first - t0);
      halted.push(end - t0);
    }
    await settle();
  }
  const f = summarize(firstOutput);
  const h = summarize(halted);
  return [
    {
      group: GROUP,
      name: 'hello: instantiate → first output (median)',
      value: f.median,
      unit: 'ms',
      note: note(target(f.median, '<', 2, 'ms'), f.note, 'cached module, fresh instance, origin client attached'),
    },
    { group: GROUP, name: 'hello: instantiate → first output (p99)', value: f.p99, unit: 'ms' },
    { group: GROUP, name: 'hello: instantiate → HALTED (median)', value: h.median, unit: 'ms', note: h.note },
    { group: GROUP, name: 'hello: instantiate → HALTED (p99)', value: h.p99, unit: 'ms' },
  ];
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const engine = nodeEngine();
  const cache = new ModuleCache(null);
  const rounds = quick ? 1 : 5;
  const rows: Row[] = [];
  progress(`hash.wasm (SHA-256 of 1 MiB, 120 rounds): plain V8 and instrumented, ${rounds} rounds each`);
  rows.push(
    ...(await cpuRows(engine, cache, { name: 'hash.wasm', bytes: guest('examples/hash.wasm'), entry: 'hash_debug', target: 1.3 }, rounds)),
  );
  progress(`fib.wat (recursive fib(36), call-heavy): plain V8 and instrumented, ${rounds} rounds each`);
  rows.push(...(await cpuRows(engine, cache, { name: 'fib(36) (calls)', bytes: await benchWat('fib'), entry: 'fib_debug' }, rounds)));
  progress('hello.wasm: instantiate to first output');
  rows.push(...(await helloRows(engine, cache, quick)));
  return rows;
}
