// Hibernation in gate-server (the real command, worker processes): an
// instance that waits is written to the data directory and leaves memory;
// the event that ends its wait wakes it (a client connecting, its timer, a
// service's reply, a peer's message), and it goes on as if it had never
// stopped, RUNNING all along. Nothing is lost across hibernate → wake →
// hibernate, nor across a restart. Every limit answers 503 naming its key,
// while another principal's calls go on.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GateServer, waitFor } from '../hostile/harness.ts';
import { Principal, readUntil, sha256, wasm, type Client } from './helpers.ts';

/** Running instances whose run waits on disk, from /metrics. */
async function hibernated(server: GateServer): Promise<number> {
  const text = (await server.client().request('/metrics')).text;
  const m = /^gate_hibernated_instances (\d+)$/m.exec(text);
  return m ? Number(m[1]) : -1;
}

/** An io connection: send `input` (or keep it open), read until `pattern`, then hang up. */
async function io(client: Client, id: string, pattern: RegExp, input?: string): Promise<string> {
  const req = http.request(`${client.base}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: client.auth() });
  if (input === undefined) req.flushHeaders();
  else req.end(input);
  const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  try {
    return await readUntil(res, pattern);
  } finally {
    req.destroy();
  }
}

async function launch(client: Client, file: string, fn: string): Promise<string> {
  return client.launch(await client.upload(wasm(file)), `&function=${fn}`);
}

/** A local HTTP server for gate.computer/localhost that holds GET /held until told to answer. */
async function heldBackend(): Promise<{ addr: string; held: () => http.ServerResponse | undefined; close: () => void }> {
  let held: http.ServerResponse | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/held') held = res;
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held,
    close: () => server.close(),
  };
}

describe('hibernation', () => {
  let backend: Awaited<ReturnType<typeof heldBackend>>;
  let dataDir: string;
  let config: Record<string, string | number | boolean>;
  let server: GateServer;
  let alice: Client;

  before(async () => {
    backend = await heldBackend();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-hibernation-'));
    config = {
      'runtime.workers': 1,
      'runtime.checkpoint': 0,
      'runtime.hibernate': 0.1,
      'service.localhost.addr': backend.addr,
      'service.peer.enabled': true,
    };
    server = await GateServer.start({ dataDir, config });
    alice = server.client(new Principal());
  });
  after(async () => {
    await server.assertStopsPromptly();
    backend.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('wakes on an io connection', async () => {
    const id = await launch(alice, 'examples/wait.wasm', 'wait');
    await waitFor('it to hibernate', async () => ((await hibernated(server)) === 1 ? true : undefined));
    assert.equal((await alice.status(id)).state, 'RUNNING');
    assert.equal(await io(alice, id, /\n/, 'hello\n'), 'HELLO\n');
    assert.deepEqual(await alice.wait(id), { state: 'HALTED' });
    assert.equal(await hibernated(server), 0);
  });

  it('wakes on its timer', async () => {
    // It waits one second for nothing but its timer, then halts.
    const id = await launch(alice, 'examples/idle.wasm', 'alarm');
    await waitFor('it to hibernate', async () => ((await hibernated(server)) === 1 ? true : undefined));
    assert.deepEqual(await alice.wait(id), { state: 'HALTED' });
    assert.equal(await hibernated(server), 0);
  });

  it("wakes on a service's reply", async () => {
    // GET /held through gate.computer/localhost: the reply comes when the test answers.
    const id = await launch(alice, 'services/localhost.wasm', 'held');
    await waitFor('the request', () => backend.held());
    // Its services stay up while its memory is on disk: the request is still under way.
    await waitFor('it to hibernate', async () => ((await hibernated(server)) === 1 ? true : undefined));
    assert.equal((await alice.status(id)).state, 'RUNNING');
    backend.held()!.end('late');
    assert.deepEqual(await alice.wait(id), { state: 'HALTED' });
  });

  it("wakes on a peer's message", async () => {
    // The echoer joins and waits for a peer; it halts only after a whole exchange with one.
    const echoer = await launch(alice, 'services/peer.wasm', 'echoer');
    await waitFor('the echoer to hibernate', async () => ((await hibernated(server)) === 1 ? true : undefined));
    const peer = await alice.upload(wasm('services/peer.wasm'));
    await waitFor('a caller to reach it', async () => {
      const caller = await alice.launch(peer, '&function=caller');
      await alice.wait(caller);
      return (await alice.status(echoer)).state === 'HALTED' ? true : undefined;
    });
  });

  it('loses nothing across hibernate → wake → hibernate, nor across a restart', async () => {
    // The counter writes 0, 1, 2, … to its client, and waits for the next client when one leaves.
    const id = await launch(alice, 'examples/counter.wasm', 'count');
    await waitFor('it to hibernate', async () => ((await hibernated(server)) === 1 ? true : undefined));
    const first = await io(alice, id, /^0\n1\n2\n/);
    const last = Number(first.trim().split('\n').pop());
    await waitFor('it to hibernate again', async () => ((await hibernated(server)) === 1 ? true : undefined));
    const second = await io(alice, id, /^\d+\n\d+\n/);
    const resumed = Number(second.split('\n')[0]);
    assert.ok(resumed > last, `${resumed} after ${last}`);
    await waitFor('it to hibernate once more', async () => ((await hibernated(server)) === 1 ? true : undefined));

    // A restart finds it where it was, hibernated, without having touched it at shutdown.
    const stopped = await server.stop();
    assert.equal(stopped.code, 0);
    server = await GateServer.start({ dataDir, config });
    alice = server.client(alice.principal);
    assert.equal((await alice.status(id)).state, 'RUNNING');
    assert.equal(await hibernated(server), 1);
    const third = await io(alice, id, /^\d+\n\d+\n/);
    assert.equal(Number(third.split('\n')[0]), Number(second.trim().split('\n').pop()) + 1, `${third} after ${second}`);
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
  });
});

describe('hibernation limits', () => {
  let server: GateServer;

  before(async () => {
    server = await GateServer.start({
      config: {
        'runtime.workers': 1,
        'runtime.checkpoint': 0,
        'runtime.maxinstances': 6, // memories: live instances
        'runtime.hibernate': 0, // only when memory is short
        'server.maxinstances': 20,
        'principal.maxinstances': 1000,
        'principal.maxprocs': 1000,
        'principal.totalmemorysize': 2 ** 40,
        'access.newprincipals': 0,
      },
    });
  });
  after(() => server.assertStopsPromptly());

  it('answers 503 naming the limit under a flood, while another principal calls', async () => {
    const mallory = server.client(new Principal());
    const bob = server.client(new Principal());
    const waiter = await mallory.upload(wasm('examples/wait.wasm'));
    const hello = wasm('examples/hello.wasm');
    const call = () =>
      bob.post(`/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, { headers: { 'Content-Type': 'application/wasm' }, body: hello });

    // 30 launches at once on a server that keeps 20, with 6 memories: idle ones hibernate to make room.
    const [launches, calls] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, () => mallory.post(`/gate-0/module/sha256/${waiter}?action=launch&function=wait`))),
      Promise.all(Array.from({ length: 10 }, call)),
    ]);
    assert.deepEqual(calls.map((r) => [r.status, r.text]), new Array(10).fill([200, 'hello, world\n']));
    const ok = launches.filter((r) => r.status === 200);
    const refused = launches.filter((r) => r.status !== 200);
    assert.equal(ok.length, 20);
    for (const r of refused) assert.deepEqual([r.status, r.text], [503, 'instance limit of the server reached (server.maxinstances = 20)\n']);
    // Every one of them answers, each woken in turn, never more than 6 in memory.
    const ids = ok.map((r) => r.headers['gate-instance'] as string);
    await Promise.all(ids.map(async (id, i) => assert.equal(await io(mallory, id, /\n/, `hi ${i}\n`), `HI ${i}\n`)));
    for (const id of ids) await mallory.post(`/gate-0/instance/${id}?action=delete`);

    // Programs that never wait cannot make room: past the memories, 503 naming runtime.maxinstances.
    const spin = await mallory.upload(wasm('wat/loop.wasm'));
    const spinners: string[] = [];
    for (let i = 0; i < 6; i++) spinners.push(await mallory.launch(spin, '&function=spin'));
    const full = await mallory.post(`/gate-0/module/sha256/${spin}?action=launch&function=spin`);
    assert.deepEqual([full.status, full.text], [503, 'no room for another live instance: every memory is in use (runtime.maxinstances = 6)\n']);
    const busy = await call();
    assert.equal(busy.status, 503);
    for (const id of spinners) await mallory.post(`/gate-0/instance/${id}?action=kill&action=wait`);
    const again = await call();
    assert.deepEqual([again.status, again.text], [200, 'hello, world\n']);
  });
});
