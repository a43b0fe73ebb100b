// The bench's page in Chromium (browser.bench.ts serves it): asks the bench
// worker (worker.ts) for measurements, and times what a page sees when it
// runs a program through the browser host (BrowserRuntime and the console's
// worker): launch → first output byte on the page.

import { BrowserRuntime } from '../../src/browser/client.ts';
import type { BenchOps } from './worker.ts';

const worker = new Worker('bench-worker.js', { type: 'module' });
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let next = 1;
worker.onmessage = (e: MessageEvent) => {
  const { id, value, error } = e.data as { id: number; value?: unknown; error?: string };
  const w = waiting.get(id)!;
  waiting.delete(id);
  if (error !== undefined) w.reject(new Error(error));
  else w.resolve(value);
};

function call<K extends keyof BenchOps>(op: K, args: Parameters<BenchOps[K]>[0]): ReturnType<BenchOps[K]> {
  const id = next++;
  return new Promise<unknown>((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  }) as ReturnType<BenchOps[K]>;
}

async function program(name: string): Promise<Uint8Array> {
  const res = await fetch(`programs/${name}`);
  if (!res.ok) throw new Error(`${name}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Launch → first output byte read by the page, through the browser host's worker; the program is prepared before. */
async function pageFirstOutput(name: string, fn: string, warmup: number, samples: number): Promise<number[]> {
  const bytes = await program(name);
  const runtime = new BrowserRuntime(new Worker('host-worker.js', { type: 'module' }));
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const id = crypto.randomUUID();
      const t0 = performance.now();
      await runtime.launch(id, bytes, { function: fn });
      const connection = runtime.connect(id);
      const reader = connection.readable.getReader();
      const { done } = await reader.read();
      const t = performance.now() - t0;
      if (done) throw new Error(`${name}: no output`);
      while (!(await reader.read()).done);
      await connection.closed;
      await runtime.suspend(id); // resolves once the run is over
      await runtime.delete(id);
      if (i >= warmup) times.push(t);
    }
  } finally {
    runtime.terminate();
  }
  return times;
}

Object.assign(globalThis, {
  bench: {
    prepare: async (name: string, rounds: number) => call('prepare', { bytes: await program(name), rounds }),
    firstOutput: async (name: string, fn: string, warmup: number, samples: number) => call('firstOutput', { bytes: await program(name), fn, warmup, samples }),
    execution: async (name: string, entry: string, rounds: number) => call('execution', { bytes: await program(name), entry, rounds }),
    pageFirstOutput,
  },
});
