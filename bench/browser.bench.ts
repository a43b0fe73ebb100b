// The runtime in Chromium (Debian's chromium driven by playwright-core): the
// browser host's preparation, a cached program instantiated to its first
// output (in the worker, and as the page sees it through the console's
// worker), and execution against plain V8 in the same worker, for loop code
// (hash.wasm) and call-heavy code (fib). The page and workers are bundled
// by esbuild from bench/browser/ and src/browser/ and served from loopback
// with cross-origin isolation, so performance.now() has 5 µs resolution.
// Browsers have no CPU clock: these are wall times, rounds interleaved.

import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { chromium, type Page } from 'playwright-core';
import { prepareModule } from '../src/runtime/prepare/prepare.ts';
import { median, note, summarize, target, time, type BenchOptions, type Row } from './lib.ts';
import { benchWat, guest, root } from './programs.ts';

const GROUP = 'browser';
const CHROMIUM = process.env.GATE_CHROMIUM || '/usr/bin/chromium';

const PAGE = '<!doctype html><meta charset="utf-8"><title>gate-ts browser bench</title><script type="module" src="page.js"></script>';

async function bundle(): Promise<Map<string, Uint8Array>> {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { page: 'bench/browser/page.ts', 'bench-worker': 'bench/browser/worker.ts', 'host-worker': 'src/browser/worker.ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  return new Map(result.outputFiles.map((f) => [path.basename(f.path), f.contents]));
}

/** Serve the page, its scripts and the programs, cross-origin isolated. */
async function serve(files: Map<string, Uint8Array>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1) || 'index.html';
    const body = name === 'index.html' ? new TextEncoder().encode(PAGE) : files.get(name);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const type = name.endsWith('.js') ? 'text/javascript' : name.endsWith('.html') ? 'text/html' : 'application/wasm';
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': body.byteLength,
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

type Bench = {
  prepare(name: string, rounds: number): Promise<number[]>;
  firstOutput(name: string, fn: string, warmup: number, samples: number): Promise<{ first: number[]; halted: number[] }>;
  execution(name: string, entry: string, rounds: number): Promise<{ plain: number[]; engine: number[] }>;
  pageFirstOutput(name: string, fn: string, warmup: number, samples: number): Promise<number[]>;
};

function inPage<K extends keyof Bench>(page: Page, op: K, ...args: Parameters<Bench[K]>): Promise<Awaited<ReturnType<Bench[K]>>> {
  return page.evaluate(
    ([op, args]) => (globalThis as unknown as { bench: Record<string, (...a: unknown[]) => unknown> }).bench[op](...args),
    [op, args] as const,
  ) as Promise<Awaited<ReturnType<Bench[K]>>>;
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  if (!existsSync(CHROMIUM)) {
    progress(`skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set GATE_CHROMIUM)`);
    return [{ group: GROUP, name: 'skipped: no Chromium', value: 0, unit: '', note: `${CHROMIUM} not found` }];
  }
  const sqlite = new Uint8Array(readFileSync(path.join(root, 'guest', 'sqlite', 'sqlite.wasm')));
  const files = await bundle();
  for (const [name, bytes] of [
    ['hello.wasm', guest('examples/hello.wasm')],
    ['hash.wasm', guest('examples/hash.wasm')],
    ['fib.wasm', await benchWat('fib')],
    ['sqlite.wasm', sqlite],
  ] as const) {
    files.set(`programs/${name}`, bytes);
  }
  const site = await serve(files);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
  const rows: Row[] = [];
  try {
    const page = await browser.newPage();
    await page.goto(site.url);
    await page.waitForFunction(() => 'bench' in globalThis);
    const version = browser.version();

    progress('browser: preparing sqlite.wasm (1013 KiB) in Chromium and in Node');
    const prepareRounds = quick ? 1 : 3;
    const inBrowser = await inPage(page, 'prepare', 'sqlite.wasm', prepareRounds);
    const inNode: number[] = [];
    for (let i = 0; i < prepareRounds; i++) inNode.push(await time(() => prepareModule(sqlite)));
    rows.push({
      group: GROUP,
      name: 'prepare sqlite.wasm (1013 KiB) in Chromium',
      value: median(inBrowser),
      unit: 'ms',
      note: note(`Node in this process: ${median(inNode).toFixed(0)} ms`, `n=${prepareRounds}`, `Chromium ${version}`),
    });

    progress('browser: hello.wasm instantiate → first output');
    const warmup = quick ? 5 : 50;
    const samples = quick ? 30 : 300;
    const hello = await inPage(page, 'firstOutput', 'hello.wasm', 'greet', warmup, samples);
    const f = summarize(hello.first);
    rows.push(
      {
        group: GROUP,
        name: 'hello: instantiate → first output, in the worker (median)',
        value: f.median,
        unit: 'ms',
        note: note(target(f.median, '<', 2, 'ms'), f.note, 'cached module, fresh instance, as runtime.bench on Node'),
      },
      { group: GROUP, name: 'hello: instantiate → first output, in the worker (p99)', value: f.p99, unit: 'ms' },
    );
    const pageSamples = quick ? 10 : 100;
    const seen = summarize(await inPage(page, 'pageFirstOutput', 'hello.wasm', 'greet', 5, pageSamples));
    rows.push({
      group: GROUP,
      name: 'hello: page launch → first output byte on the page (median)',
      value: seen.median,
      unit: 'ms',
      note: note(seen.note, `p99 ${seen.p99.toFixed(2)} ms`, 'BrowserRuntime: hash, worker round trips, instantiate, origin connection'),
    });

    const rounds = quick ? 1 : 5;
    for (const [name, entry, label] of [
      ['hash.wasm', 'hash_debug', 'hash.wasm (SHA-256 of 1 MiB)'],
      ['fib.wasm', 'fib_debug', 'fib(36) (calls)'],
    ] as const) {
      progress(`browser: ${label}, plain V8 and instrumented, ${rounds} rounds`);
      const r = await inPage(page, 'execution', name, entry, rounds);
      const ratios = r.engine.map((e, i) => e / r.plain[i]);
      rows.push(
        { group: GROUP, name: `${label}: plain V8 in Chromium`, value: median(r.plain), unit: 'ms', note: `n=${rounds}` },
        { group: GROUP, name: `${label}: instrumented, in the engine in Chromium`, value: median(r.engine), unit: 'ms', note: `n=${rounds}` },
        {
          group: GROUP,
          name: `${label}: instrumented / plain in Chromium`,
          value: median(ratios),
          unit: 'x',
          note: note(`wall time, per-round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`, 'same worker, the engine with 5 ms slices'),
        },
      );
    }
  } finally {
    await browser.close();
    await site.close();
  }
  return rows;
}
