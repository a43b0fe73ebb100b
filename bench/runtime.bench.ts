// The runtime's costs at run time: execution speed of instrumented programs
// against the same programs straight on V8 (fuel checks, suspension support, time
// slices and the engine's scheduling all included), for loop code (hash,
// sha256, sort, matrix multiply) and call-heavy code (fib), and how soon a
// cached program answers its first client. SQLite has its own module.

import { nodeEngine } from '../src/host/engine.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import { executionRows, type ExecutionSubject } from './execution.ts';
import { note, settle, summarize, target, type BenchOptions, type Row } from './lib.ts';
import { benchWat, guest, programInstance } from './programs.ts';

const GROUP = 'runtime';

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

/** Issue 12's targets: loop code within 1.15x of plain V8, call-heavy code within 1.5x. */
const LOOP_TARGET = 1.15;
const CALL_TARGET = 1.5;

async function subjects(): Promise<ExecutionSubject[]> {
  return [
    { name: 'hash.wasm (SHA-256 of 1 MiB)', bytes: guest('examples/hash.wasm'), entry: 'hash_debug', target: LOOP_TARGET },
    { name: 'sha256chain.wasm (short messages)', bytes: guest('examples/sha256chain.wasm'), entry: 'chain', target: LOOP_TARGET },
    { name: 'sort.wasm (quicksort)', bytes: guest('examples/sort.wasm'), entry: 'sort', target: LOOP_TARGET },
    { name: 'matmul.wasm (f64 matrix multiply)', bytes: guest('examples/matmul.wasm'), entry: 'matmul', target: LOOP_TARGET },
    { name: 'fib(36) (calls)', bytes: await benchWat('fib'), entry: 'fib_debug', target: CALL_TARGET },
  ];
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const engine = nodeEngine();
  const cache = new ModuleCache(null);
  const rounds = quick ? 1 : 5;
  const rows: Row[] = [];
  for (const s of await subjects()) {
    progress(`${s.name}: plain V8 and instrumented, ${rounds} rounds each`);
    rows.push(...(await executionRows(GROUP, engine, cache, s, rounds)).rows);
  }
  progress('hello.wasm: instantiate to first output');
  rows.push(...(await helloRows(engine, cache, quick)));
  return rows;
}
