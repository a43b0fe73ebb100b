// How many idle programs a server holds, and what hibernation costs
// (docs/architecture.md, "Hibernation and density"):
// - the memory pool: a new WebAssembly.Memory against one taken from the
//   pool, and instantiating echo.wasm from the pool;
// - hibernation in this process: snapshots written (to files, synced) per
//   second by one engine;
// - gate-server (the real command, two worker processes) with instances of
//   echo.wasm waiting for a client: resident memory per idle live instance
//   (runtime.hibernate = 0, nothing hibernates), and with hibernation
//   (runtime.hibernate = 1 s) per hibernated instance, in memory and on
//   disk; N of them launched (GATE_BENCH_INSTANCES, default 100,000; 1,000
//   with --quick) with no error; wake latency (io request → first byte of
//   output) of hibernated instances against live ones; SIGTERM with all of
//   them there, and a restart that finds them all.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { nodeEngine } from '../src/host/engine.ts';
import type { HostedProgram } from '../src/host/hosted-program.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import { ProgramInstance } from '../src/host/program-instance.ts';
import { MemoryPool } from '../src/runtime/instance/memory-pool.ts';
import { Registry } from '../src/services/index.ts';
import { Hosting } from '../src/server/exec/hosting.ts';
import { childProcesses, GateServer, residentBytes } from '../test/hostile/harness.ts';
import { Principal, sha256, wasm, type Client } from '../test/server/helpers.ts';
import { formatValue, median, note, percentile, summarize, target, type BenchOptions, type Row } from './lib.ts';

const GROUP = 'density';
const KiB = 1024;
const MiB = 1024 * 1024;

function row(name: string, value: number, unit: string, extra?: string): Row {
  return { group: GROUP, name, value, unit, note: extra };
}

/** Microseconds per item of `make` over `batch` items, the untimed `after` then run on them; `rounds` samples. */
function perItem<T>(make: (i: number) => T, after: (items: T[]) => void, batch: number, rounds: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const items: T[] = [];
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) items.push(make(i));
    out.push(((performance.now() - t0) * 1000) / batch);
    after(items);
  }
  return out;
}

async function poolFigures(quick: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const rounds = quick ? 3 : 15;
  const batch = 200; // within the pool's idle memories (KEEP_IDLE)
  const us = (name: string, samples: number[], ...extra: (string | false)[]) => rows.push(row(name, median(samples), 'µs', note(summarize(samples, 'µs').note, ...extra)));
  // Memories of echo.wasm's class: 4 pages, maximum 512 (32 MiB).
  us('new WebAssembly.Memory (4 pages)', perItem(() => new WebAssembly.Memory({ initial: 4, maximum: 512 }), () => {}, batch, rounds), 'an 8 GiB address-space reservation each');
  const pool = new MemoryPool({ capacity: 1000 });
  for (const m of Array.from({ length: batch }, () => pool.take(4, 512))) pool.give(m);
  const given: number[] = [];
  const taken = perItem(
    () => pool.take(4, 512),
    (ms) => {
      const t0 = performance.now();
      for (const m of ms) pool.give(m);
      given.push(((performance.now() - t0) * 1000) / ms.length);
    },
    batch,
    rounds,
  );
  us('take a memory from the pool', taken, `${pool.stats.reused} reused, ${pool.stats.created} made`);
  us('give it back (zeroed where it is not zero)', given, '256 KiB scanned a 4 KiB page at a time');

  const compiled = await new ModuleCache(null).get(wasm('examples/echo.wasm'));
  const engine = nodeEngine({ memories: new MemoryPool({ capacity: 1000 }) });
  const registry = new Registry();
  const instantiate = (i: number) => {
    const p = new ProgramInstance({ engine, compiled, registry, context: { instance: `i${i}`, scope: [] }, function: 'echo' });
    p.instance.link();
    return p;
  };
  const dispose = (ps: ProgramInstance[]) => ps.forEach((p) => p.dispose());
  dispose(Array.from({ length: batch }, (_, i) => instantiate(i)));
  const inst = perItem(instantiate, dispose, batch, rounds);
  us('instantiate echo.wasm from the pool', inst, target(median(inst), '≤', 20, 'µs'), 'a pooled memory, WebAssembly.Instance, the instance object');
  const imports = bareImports(compiled.module);
  const bare = perItem(() => new WebAssembly.Instance(compiled.module, imports), () => {}, batch, rounds);
  us('of which new WebAssembly.Instance alone', bare, 'V8 instantiating the prepared echo.wasm');
  return rows;
}

/** Imports that satisfy a module's import section with functions that do nothing (and one memory for all). */
function bareImports(module: WebAssembly.Module): WebAssembly.Imports {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 512 });
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const i of WebAssembly.Module.imports(module)) {
    const m = (imports[i.module] ??= {});
    if (i.kind === 'function') m[i.name] = () => 0;
    else if (i.kind === 'memory') m[i.name] = memory;
    else if (i.kind === 'tag') m[i.name] = new WebAssembly.Tag({ parameters: [] }) as unknown as WebAssembly.ImportValue;
    else if (i.kind === 'global') m[i.name] = new WebAssembly.Global({ value: 'i32', mutable: true }, 0);
  }
  return imports;
}

/**
 * One engine as a worker process hosts instances (exec/hosting.ts), its
 * hibernation snapshots in files (synced): hibernations per second, and the
 * wake of a dropped instance to its first output byte, without HTTP.
 */
async function hostFigures(quick: boolean): Promise<Row[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-hibernate-'));
  try {
    const cache = new ModuleCache(null);
    const compiled = await cache.get(wasm('examples/echo.wasm'));
    const hosting = new Hosting({ memories: 20_000, memoriesKey: 'memories', hibernation: { moduleDir: dir, idleMs: 0 } });
    const registry = new Registry();
    const count = quick ? 200 : 2000;
    const programs: HostedProgram[] = [];
    for (let i = 0; i < count; i++) {
      const context = { instance: crypto.randomUUID(), principal: 'bench', scope: [] };
      const p = await hosting.host({ common: { registry, context, function: 'echo' }, compiled, snapshot: null, hibernate: true, cache, maxMemoryPages: 512, events: {} });
      void p.run();
      programs.push(p);
    }
    await new Promise((r) => setTimeout(r, 200)); // all waiting for a client
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < programs.length) await hosting.hibernator.hibernate(programs[next++].program!);
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const done = hosting.hibernator.stats.hibernated;
    const rows = [row('hibernate: snapshot, write and sync, release (one engine)', done / seconds, '/s', `${done} echo.wasm waiting for a client, 8 at a time, ${formatValue((seconds * 1000) / done)} ms each`)];
    const dropped = programs.filter((p) => p.hibernating && !p.program);
    const wake: number[] = [];
    for (const p of spread(dropped, quick ? 30 : 300)) {
      const t = performance.now();
      let first = true;
      const output = new WritableStream<Uint8Array>({
        write: () => {
          if (first) wake.push(performance.now() - t);
          first = false;
        },
      });
      const input = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array([120]));
          c.close();
        },
      });
      await p.connect(input, output);
    }
    rows.push(...latencyRows('wake in the worker: connect → first output byte', wake, `${wake.length} dropped instances restored from their files (page cache warm), no HTTP`));
    for (const p of programs) p.dispose();
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resident bytes of the server and the processes that hold its instances (shards, or instance workers; not the preparers, which come and go). */
function serverRss(server: GateServer): number {
  const pid = server.process.pid!;
  const workers = childProcesses(pid).filter((c) => {
    try {
      return /gate-(instances|shard)-/.test(readFileSync(`/proc/${c}/cmdline`, 'utf8'));
    } catch {
      return false;
    }
  });
  return residentBytes(pid) + workers.reduce((n, c) => n + residentBytes(c), 0);
}

/** Launch one echo.wasm, so that it is prepared and compiled (and the processes have started) before a baseline is taken. */
async function warmUp(server: GateServer): Promise<void> {
  const c = server.client(new Principal());
  const echo = wasm('examples/echo.wasm');
  await c.upload(echo);
  const id = (await c.post(`/gate-0/module/sha256/${sha256(echo)}?action=launch&function=echo`)).headers['gate-instance'] as string;
  await firstByte(c, id);
  await settle(2000);
}

async function metric(server: GateServer, name: string): Promise<number> {
  const text = (await server.client().request('/metrics')).text;
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : -1;
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Launch `count` instances of echo.wasm spread over principals, `parallel` requests at a time; their ids. */
async function launchMany(server: GateServer, count: number, progress: (m: string) => void): Promise<{ ids: [Client, string][]; failures: string[]; ms: number }> {
  const perPrincipal = 100;
  const echo = wasm('examples/echo.wasm');
  const clients: Client[] = [];
  for (let i = 0; i < Math.ceil(count / perPrincipal); i++) clients.push(server.client(new Principal()));
  await Promise.all(clients.map((c) => c.upload(echo)));
  const hash = sha256(echo);
  const ids: [Client, string][] = [];
  const failures: string[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const c = clients[Math.floor(i / perPrincipal)];
      const r = await c.post(`/gate-0/module/sha256/${hash}?action=launch&function=echo`);
      if (r.status === 200) ids.push([c, r.headers['gate-instance'] as string]);
      else if (failures.length < 5) failures.push(`${r.status} ${r.text.trim()}`);
      else failures.push('');
      if (i % 10_000 === 9_999) progress(`${i + 1} launched`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { ids, failures, ms: performance.now() - t0 };
}

/** io with a one-byte input: milliseconds to the first byte of output. */
function firstByte(client: Client, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(`${client.base}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: client.auth() });
    req.on('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`io: ${res.statusCode}`));
      res.once('data', () => {
        resolve(performance.now() - t0);
        req.destroy();
      });
      res.once('end', () => reject(new Error('io ended without output')));
    });
    req.on('error', reject);
    req.end('x');
  });
}

async function latencies(sample: [Client, string][]): Promise<number[]> {
  const out: number[] = [];
  for (const [c, id] of sample) out.push(await firstByte(c, id));
  return out;
}

function latencyRows(name: string, ms: number[], extra: string): Row[] {
  const s = summarize(ms);
  return [row(`${name} p50`, percentile(ms, 50), 'ms', note(s.note, extra)), row(`${name} p99`, percentile(ms, 99), 'ms')];
}

const SERVER_CONFIG = {
  'runtime.workers': 2,
  'runtime.checkpoint': 0,
  'log.level': 'warn',
  'principal.maxinstances': 1000,
  'principal.maxprocs': 1000,
  'principal.totalmemorysize': 2 ** 50,
  'access.newprincipals': 0,
};

async function liveFigures(quick: boolean, progress: (m: string) => void): Promise<Row[]> {
  const count = quick ? 500 : 10_000;
  const server = await GateServer.start({ config: { ...SERVER_CONFIG, 'runtime.hibernate': 0 } });
  try {
    await warmUp(server);
    const before = serverRss(server);
    progress(`launching ${count} live instances`);
    const { ids, failures } = await launchMany(server, count, progress);
    await settle(3000);
    const rss = serverRss(server) - before;
    const wake = await latencies(ids.slice(0, quick ? 20 : 200));
    return [
      row('RSS per idle live instance', rss / ids.length / KiB, 'KiB', note(`${ids.length} echo.wasm waiting for a client (${failures.length} launches failed), server and 2 shards`, target(rss / ids.length / KiB, '≤', 50, 'KiB'))),
      ...latencyRows('io → first output byte, live instance', wake, 'the same instances'),
    ];
  } finally {
    await server.stop();
  }
}

async function hibernatedFigures(quick: boolean, progress: (m: string) => void): Promise<Row[]> {
  const count = quick ? 1000 : Number(process.env.GATE_BENCH_INSTANCES ?? 100_000);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-density-'));
  const config = { ...SERVER_CONFIG, 'runtime.hibernate': 1 };
  const rows: Row[] = [];
  let server = await GateServer.start({ dataDir, config });
  try {
    await warmUp(server);
    const before = serverRss(server);
    const disk0 = dirBytes(path.join(dataDir, 'module'));
    progress(`launching ${count} instances that hibernate after 1 s`);
    const { ids, failures, ms } = await launchMany(server, count, progress);
    rows.push(row('instances launched (echo.wasm, idle)', ids.length, '', `${failures.length} failed${failures.length ? `: ${failures.filter(Boolean).join('; ')}` : ''}; ${formatValue(ids.length / (ms / 1000))} launches/s; target 100,000 with no error`));
    const t0 = performance.now();
    for (;;) {
      const n = await metric(server, 'gate_hibernated_instances');
      if (n >= ids.length) break;
      if (performance.now() - t0 > 600_000) throw new Error(`only ${n} of ${ids.length} hibernated`);
      await settle(500);
    }
    rows.push(row('all hibernated, after the last launch', (performance.now() - t0) / 1000, 's', 'runtime.hibernate = 1 s'));
    await settle(3000);
    const rss = serverRss(server);
    rows.push(row('server RSS with them all (server and 2 shards)', rss / MiB, 'MiB', ids.length >= 100_000 ? target(rss / MiB, '≤', 2048, 'MiB') : 'target ≤ 2 GiB for 100,000'));
    rows.push(row('RSS per hibernated instance', (rss - before) / ids.length / KiB, 'KiB', 'records in the server, dormant entries in the workers'));
    rows.push(row('disk per hibernated instance', (dirBytes(path.join(dataDir, 'module')) - disk0) / ids.length / KiB, 'KiB', 'its hibernation snapshot (program and touched memory), whole 4 KiB blocks'));

    // Wake: each sample instance halts after its one conversation (echo.wasm).
    const sample = spread(ids, quick ? 30 : 300);
    const wake = await latencies(sample);
    rows.push(
      ...latencyRows('io → first output byte, hibernated instance', wake, note('restored from its snapshot in the worker; warm module cache', target(percentile(wake, 50), '≤', 5, 'ms'), `p99 ${target(percentile(wake, 99), '≤', 20, 'ms')}`)),
    );

    progress('SIGTERM with all of them there');
    const stopped = await server.stop();
    rows.push(row(`SIGTERM → exit with ${formatValue(ids.length)} instances, all hibernated`, stopped.ms / 1000, 's', note(`exit code ${stopped.code}`, target(stopped.ms / 1000, '≤', 10, 's'))));
    const t1 = performance.now();
    server = await GateServer.start({ dataDir, config });
    const restarted = (performance.now() - t1) / 1000;
    const running = await metric(server, 'gate_hibernated_instances');
    const again = ids.filter((x) => !sample.includes(x)).map(([c, id]) => [server.client(c.principal), id] as [Client, string]);
    const after = await latencies(spread(again, quick ? 10 : 50));
    rows.push(row('restart until it answers', restarted, 's', `${running} hibernated instances back (${ids.length - sample.length} expected); a sample answers, median ${formatValue(median(after))} ms to the first byte`));
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

/** `n` elements spread over the list. */
function spread<T>(list: T[], n: number): T[] {
  const step = Math.max(1, Math.floor(list.length / n));
  return list.filter((_, i) => i % step === 0).slice(0, n);
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    try {
      total += Math.ceil(statSync(path.join(dir, f)).size / 4096) * 4096;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  progress('memory pool');
  const rows = await poolFigures(quick);
  progress('hibernation in one engine');
  rows.push(...(await hostFigures(quick)));
  rows.push(...(await liveFigures(quick, progress)));
  rows.push(...(await hibernatedFigures(quick, progress)));
  return rows;
}
