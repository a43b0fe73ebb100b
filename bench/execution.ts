// Execution speed of a prepared program against the same program straight
// on V8, measured in one process with the variants interleaved round by
// round (CPU time; see README.md). Shared by the runtime and sqlite benches.

import type { ModuleCache } from '../src/host/module-cache.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import { interleave, median, note, spread, target, type Row } from './lib.ts';
import { runPlain, textLog } from './plain.ts';
import { programInstance } from './programs.ts';

export interface ExecutionSubject {
  /** Row label ("sort.wasm (quicksort)"). */
  name: string;
  bytes: Uint8Array;
  /** An entry function that writes its result to the debug log and uses no services. */
  entry: string;
  /** Target ratio to plain V8, when the issue sets one. */
  target?: number;
}

/** Median of the per-round ratios: rounds are interleaved, so each pair saw the same machine load. */
function pairedRatio(samples: readonly number[], baseline: readonly number[]): { ratio: number; range: string } {
  const ratios = samples.map((v, i) => v / baseline[i]);
  return { ratio: median(ratios), range: `per-round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}` };
}

/**
 * Plain V8 against the prepared program run by the engine (fuel checks,
 * suspension support, time slices and scheduling all included). Throws when
 * the prepared run logs anything other than the plain one; returns the rows
 * and that log.
 */
export async function executionRows(
  group: string,
  engine: Engine,
  cache: ModuleCache,
  s: ExecutionSubject,
  rounds: number,
): Promise<{ rows: Row[]; log: string }> {
  const plainModule = await WebAssembly.compile(s.bytes as Uint8Array<ArrayBuffer>);
  const compiled = await cache.get(s.bytes);
  const expected = runPlain(plainModule, s.entry);
  let got = '';
  const variants: Record<string, () => unknown> = {
    plain: () => runPlain(plainModule, s.entry),
    engine: async () => {
      const log = textLog();
      const status = await programInstance(engine, compiled, { function: s.entry, debug: log.sink }).run();
      if (status.state !== 'HALTED') throw new Error(`${s.name}: ${JSON.stringify(status)}`);
      got = log.text();
    },
  };
  const samples = await interleave(variants, rounds);
  if (got.replace(/\n$/, '') !== expected.replace(/\n$/, '')) {
    throw new Error(`${s.name}: the prepared program logged ${JSON.stringify(got)}, plain V8 ${JSON.stringify(expected)}`);
  }
  // Ratios of CPU time (robust when other work shares the machine), wall-time ratio beside.
  const full = pairedRatio(samples.engine.cpu, samples.plain.cpu);
  const fullWall = pairedRatio(samples.engine.wall, samples.plain.wall);
  const times = (v: { wall: number[]; cpu: number[] }) => `CPU median ${median(v.cpu).toFixed(0)} ms; wall ${spread(v.wall)}`;
  const rows: Row[] = [
    { group, name: `${s.name}: plain V8`, value: median(samples.plain.wall), unit: 'ms', note: times(samples.plain) },
    { group, name: `${s.name}: instrumented, in the engine`, value: median(samples.engine.wall), unit: 'ms', note: times(samples.engine) },
    {
      group,
      name: `${s.name}: instrumented / plain`,
      value: full.ratio,
      unit: 'x',
      note: note(
        s.target !== undefined && target(full.ratio, '≤', s.target, 'x'),
        `CPU time, ${full.range}`,
        `wall time ${fullWall.ratio.toFixed(2)}x`,
        'the engine with 5 ms slices',
      ),
    },
  ];
  return { rows, log: expected };
}
