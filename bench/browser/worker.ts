// The bench's worker in Chromium: the browser host's pieces (the same
// preparation, engine and ProgramInstance as the console's worker) and the
// plain V8 baseline, timed inside one worker thread. The page asks for one
// measurement at a time (page.ts); numbers are milliseconds of wall time
// (a browser has no CPU clock).

import { BrowserModules } from '../../src/browser/modules.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import type { CompiledModule } from '../../src/runtime/instance/instance.ts';
import { Engine } from '../../src/runtime/instance/engine.ts';
import { prepareModule } from '../../src/runtime/prepare/prepare.ts';
import { Registry } from '../../src/services/index.ts';
import { runPlain, textLog } from '../plain.ts';

const engine = new Engine();
const modules = new BrowserModules();
const registry = new Registry();
let instances = 0;

function instance(compiled: CompiledModule, fn: string, debug?: (chunk: Uint8Array) => void): ProgramInstance {
  return new ProgramInstance({ engine, compiled, registry, context: { instance: `bench-${++instances}`, scope: [] }, function: fn, debug });
}

/** Let the worker's other tasks run between samples. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const ops = {
  /** Preparation (validation and the rewrite), no cache. */
  async prepare({ bytes, rounds }: { bytes: Uint8Array; rounds: number }): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await prepareModule(bytes);
      times.push(performance.now() - t0);
      await settle();
    }
    return times;
  },

  /** A cached program instantiated and run to its first output byte (and to its end), as runtime.bench does on Node. */
  async firstOutput({ bytes, fn, warmup, samples }: { bytes: Uint8Array; fn: string; warmup: number; samples: number }) {
    const compiled = await modules.get(bytes);
    const first: number[] = [];
    const halted: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      let at = 0;
      const t0 = performance.now();
      const program = instance(compiled, fn);
      const done = program.run();
      const joined = program.connect(null, new WritableStream({ write: () => void (at ||= performance.now()) }));
      const status = await done;
      const end = performance.now();
      await joined;
      if (status.state !== 'HALTED' || at === 0) throw new Error(`${fn}: ${JSON.stringify(status)}, output ${at !== 0}`);
      if (i >= warmup) {
        first.push(at - t0);
        halted.push(end - t0);
      }
      await settle();
    }
    return { first, halted };
  },

  /** Plain V8 against the prepared program in the engine, rounds interleaved; the logs must agree. */
  async execution({ bytes, entry, rounds }: { bytes: Uint8Array; entry: string; rounds: number }) {
    const plainModule = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    const compiled = await modules.get(bytes);
    const expected = runPlain(plainModule, entry);
    const plain: number[] = [];
    const inEngine: number[] = [];
    let got = '';
    for (let round = 0; round < rounds + 1; round++) {
      let t0 = performance.now();
      runPlain(plainModule, entry);
      const p = performance.now() - t0;
      await settle();
      const log = textLog();
      t0 = performance.now();
      const status = await instance(compiled, entry, log.sink).run();
      const e = performance.now() - t0;
      if (status.state !== 'HALTED') throw new Error(`${entry}: ${JSON.stringify(status)}`);
      got = log.text();
      if (round > 0) {
        plain.push(p);
        inEngine.push(e);
      }
      await settle();
    }
    if (got.replace(/\n$/, '') !== expected.replace(/\n$/, '')) throw new Error(`${entry}: the engine logged ${JSON.stringify(got)}, plain V8 ${JSON.stringify(expected)}`);
    return { plain, engine: inEngine };
  },
};

export type BenchOps = typeof ops;

const scope = globalThis as unknown as { onmessage: (e: MessageEvent) => void; postMessage(m: unknown): void };
scope.onmessage = (e: MessageEvent) => {
  const { id, op, args } = e.data as { id: number; op: keyof BenchOps; args: never };
  (ops[op](args) as Promise<unknown>).then(
    (value) => scope.postMessage({ id, value }),
    (error: unknown) => scope.postMessage({ id, error: (error as Error)?.stack ?? String(error) }),
  );
};
