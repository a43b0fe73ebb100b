// gate-server over loopback: latency of anonymous calls of a nop and a hello
// program (upload-and-call, Gate's anonymous path: the module travels in
// every request body), one client at a time (p50, p99), and calls per second
// with 32 concurrent clients; beside a bare node:http handler that takes the
// same request body and answers "hello, world\n", measured in the same run as
// the ceiling. The clients run in a worker thread (bench/load.ts), the
// servers in this one; startServer() without an executor runs instances in
// its own thread. When the server has a worker-process executor, hello is
// measured through it too. Skipped with a note when src/server/server.ts is
// absent.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { note, summarize, type BenchOptions, type Row } from './lib.ts';
import type { LoadRequest, LoadResult } from './load.ts';
import { guest, root } from './programs.ts';

const GROUP = 'server';
const CONCURRENCY = 32;
const HELLO = 'hello, world\n';

interface RunningServer {
  url: string;
  close(): Promise<void>;
}

type StartServer = (options: {
  listen: { host: string; port: number };
  dataDir: string;
  config?: object;
  executor?: unknown;
  log?: unknown;
}) => Promise<RunningServer>;

interface ClosableExecutor {
  close(): Promise<void>;
}

/** What every gate server in this bench is started with besides its address. */
interface ServerSetup {
  startServer: StartServer;
  dataDir: string;
  config: object;
  /** A logger that drops everything, when the server has one. */
  log?: unknown;
}

function load(req: LoadRequest): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load.ts', import.meta.url), { workerData: req });
    worker.once('message', (result: LoadResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

async function bareServer(): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(HELLO));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Target {
  name: string;
  request: Omit<LoadRequest, 'clients' | 'calls' | 'durationMs'>;
}

function uploadHeaders(body: Uint8Array): Record<string, string> {
  return { 'content-type': 'application/wasm', 'content-length': String(body.byteLength), te: 'trailers' };
}

function callTarget(server: RunningServer, name: string, module: Uint8Array, fn: string, expect: string): Target {
  const hash = createHash('sha256').update(module).digest('hex');
  const query = `action=call${fn ? `&function=${fn}` : ''}`;
  return {
    name,
    request: { url: `${server.url}/gate-0/module/sha256/${hash}?${query}`, method: 'POST', headers: uploadHeaders(module), body: module, expect },
  };
}

async function measure(t: Target, quick: boolean, progress: (m: string) => void): Promise<Row[]> {
  const check = (r: LoadResult, what: string): LoadResult => {
    if (r.errors > 0) throw new Error(`${t.name} (${what}): ${r.errors} failed calls, first: ${r.firstError}`);
    return r;
  };
  progress(`${t.name}: warm-up, then one client, then ${CONCURRENCY} clients`);
  check(await load({ ...t.request, clients: 4, calls: quick ? 20 : 200, durationMs: 10_000 }), 'warm-up');
  const single = check(await load({ ...t.request, clients: 1, calls: quick ? 100 : 1000, durationMs: quick ? 1000 : 4000 }), '1 client');
  const many = check(
    await load({ ...t.request, clients: CONCURRENCY, calls: Number.MAX_SAFE_INTEGER, durationMs: quick ? 1000 : 4000 }),
    `${CONCURRENCY} clients`,
  );
  const s = summarize(single.latencies);
  const m = summarize(many.latencies);
  const rate = (many.latencies.length / many.elapsedMs) * 1000;
  return [
    { group: GROUP, name: `${t.name}: latency p50, 1 client`, value: s.median, unit: 'ms', note: s.note },
    { group: GROUP, name: `${t.name}: latency p99, 1 client`, value: s.p99, unit: 'ms' },
    {
      group: GROUP,
      name: `${t.name}: calls/s, ${CONCURRENCY} clients`,
      value: rate,
      unit: '/s',
      note: note(`${many.latencies.length} calls in ${(many.elapsedMs / 1000).toFixed(1)} s`, `p50 ${m.median.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms`),
    },
  ];
}

/** Gate with instances in this thread, beside the bare node:http ceiling. */
async function inProcessRows(setup: ServerSetup, quick: boolean, progress: (m: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  let gate: RunningServer | undefined;
  let bare: RunningServer | undefined;
  try {
    gate = await setup.startServer({
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: path.join(setup.dataDir, 'in-process'),
      config: setup.config,
      log: setup.log,
    });
    bare = await bareServer();
    const hello = guest('examples/hello.wasm');
    const targets: Target[] = [
      {
        name: 'node:http hello (ceiling)',
        request: { url: `${bare.url}/`, method: 'POST', headers: uploadHeaders(hello), body: hello, expect: HELLO },
      },
      callTarget(gate, 'gate call nop.wasm', guest('wat/nop.wasm'), '', ''),
      callTarget(gate, 'gate call hello.wasm greet', hello, 'greet', HELLO),
    ];
    for (const t of targets) rows.push(...(await measure(t, quick, progress)));
  } finally {
    await bare?.close();
    await gate?.close();
  }
  return rows;
}

/** The same hello calls with instances in a pool of worker processes, when the server has one. */
async function workerPoolRows(setup: ServerSetup, quick: boolean, progress: (m: string) => void): Promise<Row[]> {
  const poolModule = path.join(root, 'src', 'server', 'exec', 'worker-executor.ts');
  if (!existsSync(poolModule)) return [];
  let executor: ClosableExecutor | undefined;
  let gate: RunningServer | undefined;
  try {
    const { WorkerExecutor } = (await import(poolModule)) as {
      WorkerExecutor: new (options: { workers?: number; cacheDir: string | null }) => ClosableExecutor;
    };
    executor = new WorkerExecutor({ workers: 2, cacheDir: path.join(setup.dataDir, 'cache') });
    gate = await setup.startServer({
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: path.join(setup.dataDir, 'pool'),
      config: setup.config,
      log: setup.log,
      executor,
    });
    const target = callTarget(gate, 'gate call hello.wasm greet, 2 worker processes', guest('examples/hello.wasm'), 'greet', HELLO);
    return await measure(target, quick, progress);
  } catch (error) {
    progress(`worker pool skipped: ${(error as Error).message}`);
    return [{ group: GROUP, name: 'worker pool: skipped', value: 0, unit: '', note: (error as Error).message.slice(0, 120) }];
  } finally {
    await gate?.close();
    await executor?.close();
  }
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const serverModule = path.join(root, 'src', 'server', 'server.ts');
  if (!existsSync(serverModule)) {
    progress('skipped: src/server/server.ts does not exist yet');
    return [{ group: GROUP, name: 'skipped: no src/server/server.ts', value: 0, unit: '', note: 'the server bench needs startServer()' }];
  }
  const { startServer } = (await import(serverModule)) as { startServer: StartServer };
  let log: unknown;
  const logModule = path.join(root, 'src', 'server', 'obs', 'log.ts');
  if (existsSync(logModule)) {
    const { Logger } = (await import(logModule)) as { Logger: new (level: string) => unknown };
    log = new Logger('silent');
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gate-bench-server-'));
  // A cache of its own, so that no module prepared by an earlier run is found.
  const setup: ServerSetup = { startServer, dataDir, log, config: { log: { level: 'error' }, runtime: { cachedir: path.join(dataDir, 'cache') } } };
  try {
    return [...(await inProcessRows(setup, quick, progress)), ...(await workerPoolRows(setup, quick, progress))];
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}
