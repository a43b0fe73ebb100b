// Instrumentation (module preparation) time by module size: the committed
// example programs and synthetic programs of growing size. Preparation runs
// once per program and machine (the module cache keeps the result), so this
// is the cost of a first upload, not of a start.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModuleCache } from '../src/host/module-cache.ts';
import { prepareModule } from '../src/runtime/prepare/prepare.ts';
import { formatBytes, median, note, spread, time, timeCpu, type BenchOptions, type Row } from './lib.ts';
import { guest } from './programs.ts';
import { syntheticModule } from './synthetic.ts';

const GROUP = 'prepare';

interface Subject {
  name: string;
  bytes: Uint8Array;
  samples: number;
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const subjects: Subject[] = [
    { name: 'hello.wasm (C)', bytes: guest('examples/hello.wasm'), samples: quick ? 1 : 5 },
    { name: 'hash.wasm (C)', bytes: guest('examples/hash.wasm'), samples: quick ? 1 : 5 },
    { name: 'printf.wasm (C, wasi-libc)', bytes: guest('examples/printf.wasm'), samples: quick ? 1 : 5 },
  ];
  const sizes = quick ? [[10_000, 1]] : [[10_000, 5], [30_000, 3], [100_000, 2], [300_000, 1]];
  for (const [size, samples] of sizes) {
    progress(`building a synthetic module of ${formatBytes(size)}`);
    subjects.push({ name: `synthetic ${Math.round(size / 1000)} KB`, bytes: await syntheticModule(size), samples });
  }

  for (const s of subjects) {
    progress(`preparing ${s.name} (${s.samples}x)`);
    const samples: number[] = [];
    const cpu: number[] = [];
    let out: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < s.samples; i++) {
      const t = await timeCpu(async () => (out = (await prepareModule(s.bytes)).bytes));
      samples.push(t.wall);
      cpu.push(t.cpu);
    }
    const compileMs = await time(() => WebAssembly.compile(out as Uint8Array<ArrayBuffer>));
    const m = median(samples);
    rows.push({
      group: GROUP,
      name: `${s.name}, ${formatBytes(s.bytes.byteLength)}`,
      value: m,
      unit: 'ms',
      note: note(
        spread(samples),
        `CPU median ${median(cpu).toFixed(0)} ms`,
        `${(s.bytes.byteLength / 1e6 / (median(cpu) / 1000)).toFixed(1)} MB/s of CPU`,
        `out ${formatBytes(out.byteLength)} (${(out.byteLength / s.bytes.byteLength).toFixed(2)}x)`,
        `V8 compile ${compileMs.toFixed(1)} ms`,
      ),
    });
  }

  // What a restart costs instead: the prepared module read back from the disk cache and compiled.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gate-bench-cache-'));
  try {
    const largest = subjects[subjects.length - 1];
    await new ModuleCache(dir).get(largest.bytes);
    const hits: number[] = [];
    for (let i = 0; i < (quick ? 1 : 5); i++) hits.push(await time(() => new ModuleCache(dir).get(largest.bytes)));
    rows.push({
      group: GROUP,
      name: `${largest.name}: disk cache hit (read + compile)`,
      value: median(hits),
      unit: 'ms',
      note: spread(hits),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
