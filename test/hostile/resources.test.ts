// Attacks on the server's memory and bookkeeping (issue items 4 to 7), each
// against the gate-server command with small limits: huge tables, websocket
// input floods, piles of anonymous uploads, and throw-away keys.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { Principal, sha256, wasm } from '../server/helpers.ts';
import { anonymousCall, CoTenant, GateServer, residentBytes, waitFor, within } from './harness.ts';
import { bigTable } from './modules.ts';

const MIB = 1024 * 1024;

describe('resource attacks against gate-server', () => {
  it("tables: the issue's 48-byte module is refused, tables count in memory limits and in their worker's heap", async () => {
    const server = await GateServer.start({ config: { 'runtime.workerheap': 160, 'principal.totalmemorysize': 1024 * MIB } });
    try {
      const tenant = await CoTenant.launch(server);
      const huge = await anonymousCall(server, bigTable(10_000_000), 'run');
      assert.equal(huge.status, 400);
      assert.equal(huge.text, 'table 0 has 10000000 initial entries; the limit is 1000000\n');

      // Each of Eve's instances holds a table of 1,000,000 entries, ~32 MiB of its worker's heap:
      // a worker takes them while its heap (160 MiB) has room, then the server answers 503.
      const eve = server.client(new Principal());
      const table = await eve.upload(bigTable(1_000_000));
      const launches = [];
      for (let i = 0; i < 10; i++) launches.push(await eve.post(`/gate-0/module/sha256/${table}?action=launch&function=run`));
      const taken = launches.filter((r) => r.status === 200);
      const refused = launches.filter((r) => r.status !== 200);
      assert.ok(taken.length >= 2 && refused.length > 0, launches.map((r) => r.status).join());
      for (const r of refused) {
        assert.equal(r.status, 503);
        assert.equal(r.text, "no worker has heap left for the instance's tables (runtime.workerheap = 160 MiB)\n");
      }
      for (const r of taken) assert.deepEqual(await eve.wait(r.headers['gate-instance'] as string), { state: 'HALTED' });
      assert.deepEqual(server.logged('worker lost'), []);
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
    }

    // 32 MiB of memory and 32 MiB of table: two do not fit 96 MiB (they would, counting memory alone).
    const small = await GateServer.start({ config: { 'principal.totalmemorysize': 96 * MIB } });
    try {
      const mallory = small.client(new Principal());
      const both = await mallory.upload(wasm('wat/table_memory.wasm'));
      assert.equal((await mallory.post(`/gate-0/module/sha256/${both}?action=launch&function=spin`)).status, 200);
      const second = await mallory.post(`/gate-0/module/sha256/${both}?action=launch&function=spin`);
      assert.equal(second.status, 400);
      assert.equal(second.text, `memory limit exceeded (principal.totalmemorysize = ${96 * MIB})\n`);
    } finally {
      await small.assertStopsPromptly();
    }
  });

  it('websocket input is bounded in bytes per connection, with back-pressure', async () => {
    const server = await GateServer.start();
    try {
      const tenant = await CoTenant.launch(server);
      const before = residentBytes(server.process.pid!);
      // A program that never reads its input (it counts into its debug log), fed 24 MiB per connection.
      const counter = wasm('examples/counter.wasm');
      const open = async () => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}/gate-0/module/sha256/${sha256(counter)}?action=call&function=debug_count`);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        ws.send(JSON.stringify({ content_type: 'application/wasm', content_length: counter.byteLength }));
        ws.send(counter);
        await new Promise((resolve) => ws.once('message', resolve));
        return ws;
      };
      const sockets = await Promise.all(Array.from({ length: 8 }, open));
      const chunk = Buffer.alloc(MIB, 0x61);
      for (const ws of sockets) for (let i = 0; i < 24; i++) ws.send(chunk);
      // The server reads a little and stops: the rest waits on the client's side.
      await waitFor('the server to stop reading', () => sockets.every((ws) => ws.bufferedAmount > 16 * MIB) || undefined);
      const grown = residentBytes(server.process.pid!) - before;
      assert.ok(grown < 64 * MIB, `the server grew by ${Math.round(grown / MIB)} MiB for 192 MiB sent`);
      await tenant.assertHealthy();
      for (const ws of sockets) ws.terminate();

      // Input messages are at most 1 MiB (only a call's module may be bigger).
      const ws = await open();
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.send(Buffer.alloc(2 * MIB));
      assert.equal(await within('the close', closed), 1009);
    } finally {
      await server.assertStopsPromptly();
    }
  });

  it('anonymous uploads do not pile up: unpinned modules are a bounded cache', async () => {
    const cache = mkdtempSync(path.join(os.tmpdir(), 'gate-hostile-cache-'));
    const server = await GateServer.start({ config: { 'server.unpinnedmodules': 8, 'runtime.cachedir': cache, 'runtime.cachesize': 4 } });
    try {
      const tenant = await CoTenant.launch(server);
      const before = residentBytes(server.process.pid!);
      // 60 distinct modules of 1 MiB, each called once.
      for (let i = 0; i < 60; i++) {
        const reply = await anonymousCall(server, paddedHello(MIB), 'greet');
        assert.equal(reply.text, 'hello, world\n');
      }
      // Past the few seconds a new module is kept anyway, one more upload trims the cache.
      await new Promise((r) => setTimeout(r, 6000));
      assert.equal((await anonymousCall(server, paddedHello(MIB), 'greet')).text, 'hello, world\n');
      const moduleDir = path.join(server.dataDir, 'module');
      const megabytes = readdirSync(moduleDir).filter((f) => statSync(path.join(moduleDir, f)).size >= MIB).length;
      assert.ok(megabytes <= 9, `${megabytes} uploads of 1 MiB kept`);
      // Prepared modules too stay within runtime.cachesize.
      const cached = readdirSync(cache).reduce((n, f) => n + statSync(path.join(cache, f)).size, 0);
      assert.ok(cached <= 4 * MIB, `${Math.round(cached / 1024)} KiB of prepared modules kept`);
      // In memory, what is kept of modules is bounded in bytes (a sanity bound: RSS moves with the garbage collector).
      const grown = residentBytes(server.process.pid!) - before;
      assert.ok(grown < 160 * MIB, `the server grew by ${Math.round(grown / MIB)} MiB for 60 MiB of modules`);
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('throw-away keys: new principals per source are rate limited, and the server caps its instances with 503', async () => {
    const server = await GateServer.start({ config: { 'access.newprincipals': 5, 'server.maxinstances': 12 } });
    try {
      const tenant = await CoTenant.launch(server);
      const counter = wasm('examples/counter.wasm');
      const keys = Array.from({ length: 10 }, () => server.client(new Principal()));
      const pins = [];
      for (const key of keys) {
        pins.push(
          await key.request(`/gate-0/module/sha256/${sha256(counter)}?action=pin`, {
            method: 'PUT',
            headers: { 'Content-Type': 'application/wasm' },
            body: counter,
          }),
        );
      }
      // The co-tenant was the first new principal from this address.
      assert.deepEqual(pins.map((r) => r.status), [201, 201, 201, 201, 429, 429, 429, 429, 429, 429]);
      assert.equal(pins[4].text, 'too many new principals from this address (access.newprincipals = 5 per minute)\n');
      assert.ok(Number(pins[4].headers['retry-after']) > 0);

      // 12 instances in the server; the co-tenant holds one.
      const mallory = keys[0];
      const launches = [];
      for (let i = 0; i < 12; i++) launches.push(await mallory.post(`/gate-0/module/sha256/${sha256(counter)}?action=launch&action=suspend`));
      assert.deepEqual(launches.map((r) => r.status), [...new Array(11).fill(200), 503]);
      assert.equal(launches[11].text, 'instance limit of the server reached (server.maxinstances = 12)\n');
      // A full server goes on running what it holds, and serves again as soon as there is room.
      await tenant.checkpoints(2);
      for (const r of launches.slice(0, 11)) await mallory.post(`/gate-0/instance/${r.headers['gate-instance']}?action=delete`);
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
    }
  });
});

/** hello.wasm with a custom section of random bytes, `size` bytes in all: a new module every time. */
function paddedHello(size: number): Uint8Array {
  const hello = wasm('examples/hello.wasm');
  const name = new TextEncoder().encode('pad');
  const payload = size - hello.byteLength - 2 - 4 - name.length;
  const content = new Uint8Array(1 + name.length + payload);
  content[0] = name.length;
  content.set(name, 1);
  crypto.getRandomValues(content.subarray(1 + name.length, 1 + name.length + Math.min(payload, 65536)));
  const len = content.length;
  const header = [0, (len & 0x7f) | 0x80, ((len >> 7) & 0x7f) | 0x80, ((len >> 14) & 0x7f) | 0x80, (len >> 21) & 0x7f];
  return new Uint8Array([...hello, ...header, ...content]);
}

