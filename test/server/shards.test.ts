// gate-server in shard processes on one port (src/server/shards/):
// requests about an instance reach it whichever shard their connection
// lands on (HTTP and websockets), the limits hold across shards, lists
// and metrics cover all shards, and the watchdog kills a shard that
// nothing can interrupt, ending the offender and restoring its persistent
// co-tenants on another shard. Every request uses a connection of its own,
// so the kernel spreads them over the shards.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startShards, type RunningShards } from '../../src/server/shards/supervisor.ts';
import { Logger } from '../../src/server/obs/log.ts';
import { mergeConfig, type ConfigInput } from '../../src/server/server.ts';
import { Client, ioLines, Principal, sha256, testCacheDir, wasm } from './helpers.ts';

interface Shards {
  server: RunningShards;
  site: { url: string; audience: string };
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

async function shards(config: ConfigInput = {}, testHooks = false): Promise<Shards> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-shards-test-'));
  const logs: Record<string, unknown>[] = [];
  const server = await startShards({
    listen: { host: '127.0.0.1', port: 0 },
    dataDir,
    config: mergeConfig({ ...config, runtime: { workers: 2, cachedir: testCacheDir, ...(config.runtime ?? {}) } }),
    log: new Logger('info', (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
    testHooks,
    relayLogs: true,
  });
  return {
    server,
    site: { url: server.url, audience: `${server.url}/gate-0/` },
    logs,
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Wait until `test` holds; a request that fails meanwhile (a connection to the lost shard) counts as not yet. */
async function waitFor(what: string, test: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const until = performance.now() + ms;
  while (!(await Promise.resolve().then(test).catch(() => false))) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Output of `io` over a websocket until `pattern` has been seen. */
async function ioOverWebSocket(c: Client, id: string, pattern: RegExp): Promise<{ first: unknown; output: string }> {
  const ws = new WebSocket(`${c.base.replace(/^http/, 'ws')}/gate-0/instance/${id}?action=io`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ authorization: c.principal!.bearer(c.audience) }));
  let first: unknown;
  let output = '';
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (!binary) first ??= JSON.parse(data.toString());
      else output += data.toString();
      if (pattern.test(output)) resolve();
    });
    ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()} before ${pattern}: ${JSON.stringify(output)}`)));
  });
  ws.terminate();
  return { first, output };
}

describe('gate-server in shards', () => {
  let c: Shards;
  let alice: Client;

  before(async () => {
    c = await shards({ principal: { maxprocs: 64 } });
    alice = new Client(c.site, new Principal());
  });
  after(() => c.close());

  it('serves an instance whichever shard a request reaches: HTTP, io, websockets, lists', async () => {
    const counter = await alice.upload(wasm('examples/counter.wasm'));
    const ids: string[] = [];
    // Instances on both shards (connections land where the kernel puts them).
    while (ids.length < 2 || new Set(ids.map((id) => c.server.shardOf(alice.principal!.id, id))).size < 2) {
      assert.ok(ids.length < 40, 'launches reached both shards');
      ids.push(await alice.launch(counter, '&function=count'));
    }
    for (const id of ids.slice(0, 4)) {
      for (let i = 0; i < 3; i++) assert.deepEqual(await alice.status(id), { state: 'RUNNING' });
      const text = await ioLines(alice, id, /\n\d+\n\d+\n/);
      assert.match(text, /^\d+\n/);
      const ws = await ioOverWebSocket(alice, id, /\n\d+\n\d+\n/);
      assert.deepEqual(ws.first, { connected: true });
      assert.equal((await alice.post(`/gate-0/instance/${id}?action=suspend&action=wait`)).headers['gate-status'], '{"state":"SUSPENDED"}');
      assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume`)).status, 200);
      assert.deepEqual(await alice.status(id), { state: 'RUNNING' });
    }
    const listed = JSON.parse((await alice.post('/gate-0/instance/')).text) as { instances: { instance: string }[] };
    assert.deepEqual(listed.instances.map((i) => i.instance), [...ids].sort());
    for (const id of ids) {
      assert.equal((await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`)).status, 200);
      assert.equal((await alice.post(`/gate-0/instance/${id}?action=delete`)).status, 200);
    }
    assert.deepEqual(JSON.parse((await alice.post('/gate-0/instance/')).text), {});
    // Another principal's instance is as unknown on every shard.
    const bob = new Client(c.site, new Principal());
    assert.equal((await bob.post(`/gate-0/instance/${ids[0]}`)).text, 'instance not found\n');
  });

  it('answers io at once whichever shard it reaches, when the program waits for input first (a client sends only after the headers)', async () => {
    const hello = await alice.upload(wasm('examples/hello.wasm'));
    // Eight conversations on fresh connections: the kernel puts about half on the shard without the instance.
    for (let i = 0; i < 8; i++) {
      const id = await alice.launch(hello, '&function=repl');
      const req = http.request(`${alice.base}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: { ...alice.auth(), TE: 'trailers' }, agent: false });
      req.flushHeaders();
      // As `gate repl` does: nothing is sent before the answer's headers.
      const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
      assert.equal(res.statusCode, 200);
      req.end('first\n');
      let output = '';
      for await (const chunk of res) output += (chunk as Buffer).toString();
      assert.equal(output, 'hello, world\n');
      assert.equal(res.trailers['gate-status'], '{"state":"HALTED"}');
      assert.equal((await alice.post(`/gate-0/instance/${id}?action=delete`)).status, 200);
    }
  });

  it('holds a chosen instance id and the principal limits across shards', async () => {
    const counter = await alice.upload(wasm('examples/counter.wasm'));
    const id = '2b1c2b3e-6f9a-4a1e-9d3c-5e8f7a6b4c2d';
    const launches = await Promise.all(Array.from({ length: 12 }, () => alice.post(`/gate-0/module/sha256/${counter}?action=launch&instance=${id}&function=count`)));
    assert.equal(launches.filter((r) => r.status === 200).length, 1);
    for (const r of launches.filter((r) => r.status !== 200)) assert.deepEqual([r.status, r.text], [409, 'duplicate instance id\n']);
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`)).status, 200);
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=delete`)).status, 200);

    const carol = new Client(c.site, new Principal());
    const loop = await carol.upload(wasm('wat/loop.wasm'));
    // principal.maxinstances is 64: 70 launches at once, over both shards.
    const many = await Promise.all(Array.from({ length: 70 }, () => carol.post(`/gate-0/module/sha256/${loop}?action=launch&action=suspend`)));
    assert.equal(many.filter((r) => r.status === 200).length, 64);
    for (const r of many.filter((r) => r.status !== 200)) assert.equal(r.text, 'instance limit exceeded (principal.maxinstances = 64)\n');
    // Room that one shard gives back goes to the other.
    for (const r of many.filter((r) => r.status === 200)) await carol.post(`/gate-0/instance/${r.headers['gate-instance']}?action=delete`);
    const again = await Promise.all(Array.from({ length: 64 }, () => carol.post(`/gate-0/module/sha256/${loop}?action=launch&action=suspend`)));
    assert.deepEqual([...new Set(again.map((r) => r.status))], [200]);
  });

  it('calls a pinned module on every shard, and on none once it is unpinned', async () => {
    const dave = new Client(c.site, new Principal());
    const hello = await dave.upload(wasm('examples/hello.wasm'));
    const call = () => dave.post(`/gate-0/module/sha256/${hello}?action=call&function=greet`);
    for (const r of await Promise.all(Array.from({ length: 12 }, call))) assert.equal(r.text, 'hello, world\n');
    assert.equal((await dave.post(`/gate-0/module/sha256/${hello}?action=unpin`)).status, 200);
    for (const r of await Promise.all(Array.from({ length: 12 }, call))) assert.deepEqual([r.status, r.text], [404, 'module not found\n']);
  });

  it('is the only server on its port: another one started there fails as on a taken port', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-shards-test-'));
    try {
      const port = Number(new URL(c.server.url).port);
      await assert.rejects(
        startShards({
          listen: { host: '127.0.0.1', port },
          dataDir,
          config: mergeConfig({ runtime: { workers: 2, cachedir: testCacheDir } }),
          log: new Logger('error', () => {}),
        }).then(async (second) => {
          await second.close();
          return second;
        }),
        /EADDRINUSE/,
      );
      const hello = wasm('examples/hello.wasm');
      for (let i = 0; i < 4; i++) {
        const r = await new Client(c.site).post(`/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, { headers: { 'Content-Type': 'application/wasm' }, body: hello });
        assert.equal(r.text, 'hello, world\n');
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('counts the calls of every shard in one set of metrics', async () => {
    const hello = wasm('examples/hello.wasm');
    const before = callsTotal((await new Client(c.site).request('/metrics')).text);
    for (let i = 0; i < 10; i++) {
      const r = await new Client(c.site).post(`/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, {
        headers: { 'Content-Type': 'application/wasm' },
        body: hello,
      });
      assert.equal(r.text, 'hello, world\n');
    }
    const metrics = (await new Client(c.site).request('/metrics')).text;
    assert.equal(callsTotal(metrics) - before, 10);
    assert.match(metrics, /gate_worker_instances\{worker="0",stuck="0"\}/);
    assert.match(metrics, /gate_worker_instances\{worker="1",stuck="0"\}/);
  });
});

/** Whether a process still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function callsTotal(metrics: string): number {
  return Number(/^gate_calls_total\{transport="http"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

describe('a shard that nothing can interrupt, or that runs out of heap', () => {
  for (const how of ['loop', 'heap'] as const) {
    it(`(${how}) is killed; the offender ends naming the limit, co-tenants on it resume from their last checkpoint on the other shard`, async () => {
      const c = await shards({ runtime: { checkpoint: 1, watchdog: 2, workerheap: 96 } }, true);
      try {
        const bob = new Client(c.site, new Principal());
        const eve = new Client(c.site, new Principal());
        const evil = await eve.launch(await eve.upload(wasm('examples/counter.wasm')), '&function=debug_count');
        const shard = c.server.shardOf(eve.principal!.id, evil);
        const counter = await bob.upload(wasm('examples/counter.wasm'));
        // Bob's instances beside Eve's, and on the other shard.
        const tenants: string[] = [];
        while (!tenants.some((id) => c.server.shardOf(bob.principal!.id, id) === shard) || !tenants.some((id) => c.server.shardOf(bob.principal!.id, id) !== shard)) {
          assert.ok(tenants.length < 40, 'launches reached both shards');
          tenants.push(await bob.launch(counter, '&function=debug_count'));
        }
        const checkpointsOf = (id: string) => new Set(c.logs.filter((l) => l.msg === 'instance checkpointed' && l.instance === id).map((l) => l.module));
        await waitFor('first checkpoints', () => tenants.every((id) => checkpointsOf(id).size > 0));
        const pids = c.server.pids();

        c.server.blockForTest(eve.principal!.id, evil, how);
        await waitFor('the watchdog', () => c.logs.some((l) => l.msg === 'worker lost'));
        const lost = c.logs.find((l) => l.msg === 'worker lost')!;
        assert.equal(lost.kind, how === 'loop' ? 'stuck' : 'heap');
        assert.equal(lost.offender, evil);
        const bystanders = tenants.filter((id) => (lost.instances as string[]).includes(id));
        assert.ok(bystanders.length > 0, 'a co-tenant shared the shard');

        // Connections the kernel queued on the stuck shard (SO_REUSEPORT) are reset when it dies, as
        // docs/server.md says: ask again only once it is gone.
        await waitFor('the lost shard to exit', () => pids.some((pid) => !alive(pid)));
        await waitFor('the offender to be known again', async () => (await eve.post(`/gate-0/instance/${evil}`)).status === 200);
        assert.deepEqual(await eve.wait(evil), {
          state: 'KILLED',
          error:
            how === 'loop'
              ? 'the program held its worker for 2 s without letting it answer (runtime.watchdog = 2)'
              : "the program's worker ran out of memory (runtime.workerheap = 96 MiB)",
        });
        for (const id of tenants) {
          const before = checkpointsOf(id).size;
          await waitFor(`${id} to run again`, async () => {
            const r = await bob.post(`/gate-0/instance/${id}`);
            return r.status === 200 && (JSON.parse(r.text) as { status: { state: string } }).status.state === 'RUNNING';
          });
          await waitFor('checkpoints after the loss', () => checkpointsOf(id).size >= before + 2);
        }
        assert.ok(c.logs.some((l) => l.msg === 'instance restored from its last checkpoint' && bystanders.includes(l.instance as string)));
        // A replacement serves on the same port, and a module never seen is prepared and called.
        await waitFor('a replacement shard', () => c.server.pids().length === 2 && c.server.pids().some((p) => !pids.includes(p)));
        const hello = wasm('examples/hello.wasm');
        const reply = await new Client(c.site).post(`/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, {
          headers: { 'Content-Type': 'application/wasm' },
          body: hello,
        });
        assert.equal(reply.text, 'hello, world\n');
      } finally {
        await c.close();
      }
    });
  }
});

describe('closing gate-server in shards', () => {
  it('a shard that nothing can interrupt does not hold the close: it is killed, its offender stays ended, the rest resume at the next start', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-shards-test-'));
    const logs: Record<string, unknown>[] = [];
    const start = () =>
      startShards({
        listen: { host: '127.0.0.1', port: 0 },
        dataDir,
        config: mergeConfig({ runtime: { workers: 2, cachedir: testCacheDir, checkpoint: 1, watchdog: 2 } }),
        log: new Logger('info', (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
        testHooks: true,
        relayLogs: true,
      });
    try {
      let server = await start();
      let site = { url: server.url, audience: `${server.url}/gate-0/` };
      const bob = new Principal();
      const eve = new Principal();
      const counter = wasm('examples/counter.wasm');
      const evil = await new Client(site, eve).launch(await new Client(site, eve).upload(counter), '&function=debug_count');
      const tenants: string[] = [];
      const hash = await new Client(site, bob).upload(counter);
      while (new Set(tenants.map((id) => server.shardOf(bob.id, id))).size < 2) {
        assert.ok(tenants.length < 40, 'launches reached both shards');
        tenants.push(await new Client(site, bob).launch(hash, '&function=debug_count'));
      }
      await waitFor('first checkpoints', () => [evil, ...tenants].every((id) => logs.some((l) => l.msg === 'instance checkpointed' && l.instance === id)));

      server.blockForTest(eve.id, evil, 'loop');
      await server.close();
      const lost = logs.find((l) => l.msg === 'worker lost');
      assert.equal(lost?.kind, 'stuck');
      assert.equal(lost?.offender, evil);

      server = await start();
      try {
        site = { url: server.url, audience: `${server.url}/gate-0/` };
        assert.deepEqual(await new Client(site, eve).status(evil), {
          state: 'KILLED',
          error: 'the program held its worker for 2 s without letting it answer (runtime.watchdog = 2)',
        });
        for (const id of tenants) assert.deepEqual(await new Client(site, bob).status(id), { state: 'RUNNING' });
      } finally {
        await server.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
