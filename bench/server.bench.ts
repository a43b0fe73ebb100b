// gate-server at wire speed, side by side with its peers in one run: each
// server in a process of its own, the clients (autocannon, bench/server/
// load.ts) in another, over loopback, with 1 client and with 32.
//
// - node:http hello: a bare node:http server that reads the body and
//   answers "hello, world\n" (bench/server/bare.ts): the ceiling.
// - workerd hello, in JavaScript and in wasm (a module instantiated for
//   every request), when @cloudflare/workerd-linux-64 is installed
//   (bench/server/workerd.ts).
// - gate-server as a user starts it (bin/gate-server.js, one shard per
//   core): a nop call with the module in the body (anonymous), a nop call of
//   a pinned module by a principal (a signed token), and hello.wasm's greet
//   by a principal.
//
// Figures: calls per second, p50 and p99 of the response time, and CPU
// time of the server's processes per call (less disturbed by other work on
// the machine than the rates); medians over the rounds, the targets in
// bench/README.md. The ratios are of calls per second at 32 clients.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { median, type BenchOptions, type Row } from './lib.ts';
import { benchWat, guest, root } from './programs.ts';
import type { LoadRequest, LoadResult } from './server/load.ts';
import { startWorkerd, workerdBinary } from './server/workerd.ts';

const GROUP = 'server';
const HELLO = 'hello, world\n';
const CLIENTS = [1, 32];

interface Server {
  url: string;
  /** The process whose tree's CPU time counts. */
  pid: number;
  close(): Promise<void>;
}

interface Target {
  name: string;
  server: Server;
  request: Omit<LoadRequest, 'clients' | 'seconds'>;
}

interface Sample extends LoadResult {
  /** Server CPU microseconds per call. */
  cpu: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Start a process and wait for `pattern` on its stdout (its first group is returned). */
function started(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m) resolve(m[1]);
    });
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}): ${err.slice(0, 400)}`)));
  });
}

function closer(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

async function startBare(): Promise<Server> {
  const child = spawn(process.execPath, [path.join(root, 'bench', 'server', 'bare.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await started(child, /listening (\d+)\n/, 'the node:http server');
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, close: closer(child) };
}

async function startGate(dataDir: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'bin', 'gate-server.js'),
      ...['-F', '/dev/null', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'data')],
      ...['-o', `runtime.cachedir=${path.join(dataDir, 'cache')}`, '-o', 'log.level=error'],
      // Room for 32 clients of one principal, and for the anonymous ones.
      ...['-o', 'principal.maxprocs=256', '-o', 'principal.maxinstances=256', '-o', `principal.totalmemorysize=${256 * 64 * 1024 * 1024}`],
      ...['-o', 'access.anonymousprocs=256'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await started(child, /listening on (http:\/\/\S+)\n/, 'gate-server');
  return { url, pid: child.pid!, close: closer(child) };
}

/** CPU time (user + system) of a process and its descendants, in microseconds (Linux). */
function treeCpu(pid: number): number {
  const ticks = 100; // USER_HZ
  let total = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) / ticks) * 1e6;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, 'latin1').trim();
        for (const c of children ? children.split(' ') : []) visit(Number(c));
      }
    } catch {
      // gone
    }
  };
  visit(pid);
  return total;
}

function load(request: LoadRequest): Promise<LoadResult> {
  const child = spawn(process.execPath, [path.join(root, 'bench', 'server', 'load.ts'), JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return started(child, /^(\{.*\})\n/m, 'the load generator').then((json) => JSON.parse(json) as LoadResult);
}

async function measure(t: Target, clients: number, seconds: number): Promise<Sample> {
  const before = treeCpu(t.server.pid);
  const r = await load({ ...t.request, clients, seconds });
  const cpu = treeCpu(t.server.pid) - before;
  if (r.errors > 0 || r.non2xx > 0) throw new Error(`${t.name}, ${clients} clients: ${r.errors} failed calls, ${r.non2xx} not 2xx`);
  return { ...r, cpu: r.calls > 0 ? cpu / r.calls : NaN };
}

/** A principal's signed token (EdDSA, its key in the header), valid for 14 minutes at `audience`. */
function bearer(audience: string): { token: string; pin: (url: string, module: Uint8Array) => Promise<string> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x } });
  const claims = b64({ exp: Math.floor(Date.now() / 1000) + 840, aud: [audience] });
  const token = `${head}.${claims}.${sign(null, Buffer.from(`${head}.${claims}`), privateKey).toString('base64url')}`;
  return {
    token,
    async pin(url, module) {
      const hash = createHash('sha256').update(module).digest('hex');
      const r = await fetch(`${url}/gate-0/module/sha256/${hash}?action=pin`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/wasm' },
        body: Buffer.from(module),
      });
      if (r.status !== 201) throw new Error(`pin failed: ${r.status} ${await r.text()}`);
      return hash;
    },
  };
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const seconds = quick ? 1 : 5;
  const rounds = quick ? 1 : 3;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-server-'));
  const nop = guest('wat/nop.wasm');
  const hello = guest('examples/hello.wasm');
  const nopFile = path.join(dir, 'nop.wasm');
  writeFileSync(nopFile, nop);
  const servers: Server[] = [];
  try {
    progress('starting node:http, workerd and gate-server');
    const bare = await startBare();
    servers.push(bare);
    const gate = await startGate(dir);
    servers.push(gate);
    const targets: Target[] = [{ name: 'node:http hello', server: bare, request: { url: `${bare.url}/`, method: 'POST', headers: {}, bodyFile: nopFile, expect: HELLO } }];
    const workerd = workerdBinary();
    if (workerd) {
      const js = await startWorkerd(workerd, await freePort());
      servers.push(js);
      const wasm = await startWorkerd(workerd, await freePort(), await benchWat('hello_workerd'));
      servers.push(wasm);
      targets.push(
        { name: 'workerd hello, JS', server: js, request: { url: `${js.url}/`, method: 'POST', headers: {}, bodyFile: nopFile, expect: HELLO } },
        { name: 'workerd hello, wasm', server: wasm, request: { url: `${wasm.url}/`, method: 'POST', headers: {}, bodyFile: nopFile, expect: HELLO } },
      );
    } else {
      progress('workerd skipped: @cloudflare/workerd-linux-64 is not installed for this platform');
    }
    const principal = bearer(`${gate.url}/gate-0/`);
    const auth = { authorization: `Bearer ${principal.token}`, te: 'trailers' };
    const nopHash = createHash('sha256').update(nop).digest('hex');
    const pinnedNop = await principal.pin(gate.url, nop);
    const pinnedHello = await principal.pin(gate.url, hello);
    targets.push(
      {
        name: 'gate nop, anonymous, module in the body',
        server: gate,
        request: { url: `${gate.url}/gate-0/module/sha256/${nopHash}?action=call`, method: 'POST', headers: { 'content-type': 'application/wasm', te: 'trailers' }, bodyFile: nopFile, expect: '' },
      },
      { name: 'gate nop, pinned, authenticated', server: gate, request: { url: `${gate.url}/gate-0/module/sha256/${pinnedNop}?action=call`, method: 'POST', headers: auth, expect: '' } },
      {
        name: 'gate hello greet, pinned, authenticated',
        server: gate,
        request: { url: `${gate.url}/gate-0/module/sha256/${pinnedHello}?action=call&function=greet`, method: 'POST', headers: auth, expect: HELLO },
      },
    );

    // Warm up every target (V8's tiers, the modules prepared and compiled in every shard), then rounds of all of them.
    for (const t of targets) {
      progress(`warm-up: ${t.name}`);
      await load({ ...t.request, clients: 32, seconds: quick ? 1 : 2 });
    }
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        for (const clients of CLIENTS) {
          progress(`round ${round + 1}/${rounds}: ${t.name}, ${clients} client${clients > 1 ? 's' : ''}`);
          const key = `${t.name}|${clients}`;
          samples.set(key, [...(samples.get(key) ?? []), await measure(t, clients, seconds)]);
        }
      }
    }
    return rows(targets, samples, seconds, rounds);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function rows(targets: Target[], samples: Map<string, Sample[]>, seconds: number, rounds: number): Row[] {
  const out: Row[] = [];
  const rate = (name: string, clients: number) => median((samples.get(`${name}|${clients}`) ?? []).map((s) => s.rate));
  for (const t of targets) {
    for (const clients of CLIENTS) {
      const s = samples.get(`${t.name}|${clients}`)!;
      const p50 = median(s.map((x) => x.p50));
      const p99 = median(s.map((x) => x.p99));
      const cpu = median(s.map((x) => x.cpu));
      out.push({
        group: GROUP,
        name: `${t.name}: calls/s, ${clients} client${clients > 1 ? 's' : ''}`,
        value: rate(t.name, clients),
        unit: '/s',
        note: `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; server CPU ${cpu.toFixed(0)} µs/call; median of ${rounds} × ${seconds} s`,
      });
    }
  }
  const bare = rate('node:http hello', 32);
  const wasm = rate('workerd hello, wasm', 32);
  const targetsOf: [string, number][] = [
    ['gate nop, anonymous, module in the body', 0.5],
    ['gate nop, pinned, authenticated', 0.5],
    ['gate hello greet, pinned, authenticated', 0.35],
  ];
  for (const [name, target] of targetsOf) {
    const ratio = rate(name, 32) / bare;
    out.push({ group: GROUP, name: `${name} / node:http, 32 clients`, value: ratio * 100, unit: '%', note: `target ≥ ${target * 100}%: ${ratio >= target ? 'met' : 'not met'}` });
    if (!Number.isNaN(wasm)) {
      const vs = rate(name, 32) / wasm;
      out.push({ group: GROUP, name: `${name} / workerd wasm hello, 32 clients`, value: vs, unit: 'x', note: `target > 1: ${vs > 1 ? 'met' : 'not met'}` });
    }
  }
  for (const name of targetsOf.map(([n]) => n)) {
    const one = samples.get(`${name}|1`)!;
    const many = samples.get(`${name}|32`)!;
    const p50 = median(one.map((x) => x.p50));
    const p99 = median(one.map((x) => x.p99));
    const tail = median(many.map((x) => x.p99 / x.p50));
    out.push({
      group: GROUP,
      name: `${name}: p50 / p99, 1 client`,
      value: p50,
      unit: 'ms',
      note: `p99 ${p99.toFixed(2)} ms; targets p50 ≤ 0.3 ms (${p50 <= 0.3 ? 'met' : 'not met'}), p99 ≤ 2 ms (${p99 <= 2 ? 'met' : 'not met'}); at 32 clients p99 = ${tail.toFixed(1)} × p50 (target ≤ 5: ${tail <= 5 ? 'met' : 'not met'})`,
    });
  }
  return out;
}
