// The smaller items of the issue (item 8), against the gate-server command:
// a damaged or emptied data directory, files left by a crash, damaged module
// files, concurrent requests racing past a limit, dripping request bodies,
// and requests that arrive while the server loads its instances.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import type { CreateOptions, ExecInstance, Executor } from '../../src/server/exec/executor.ts';
import { InProcessExecutor } from '../../src/server/exec/executor.ts';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer } from '../../src/server/server.ts';
import { Client, Principal, testCacheDir, wasm } from '../server/helpers.ts';
import { anonymousCall, callStatus, CoTenant, GateServer, within } from './harness.ts';

function freshDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'gate-hostile-'));
}

describe('the data directory at startup', () => {
  it('a corrupt database stops the start at once, saying why', async () => {
    const dir = freshDir();
    try {
      writeFileSync(path.join(dir, 'inventory.sqlite'), 'this is not a database, it only has its name'.repeat(200));
      await assert.rejects(within('the failed start', GateServer.start({ dataDir: dir })), /inventory database .*inventory\.sqlite cannot be used: file is not a database/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an emptied database beside module files stops the start; files of interrupted writes are removed', async () => {
    const dir = freshDir();
    try {
      const first = await GateServer.start({ dataDir: dir });
      await first.client(new Principal()).upload(wasm('examples/hello.wasm'));
      await first.assertStopsPromptly();
      const moduleDir = path.join(dir, 'module');
      // A write cut short by kill -9: a temporary file beside the module files.
      writeFileSync(path.join(moduleDir, `.${'0'.repeat(64)}.12345.leftover`), 'half a module');
      const second = await GateServer.start({ dataDir: dir });
      assert.deepEqual(
        readdirSync(moduleDir).filter((f) => f.startsWith('.')),
        [],
      );
      await second.assertStopsPromptly();

      for (const f of readdirSync(dir)) if (f.startsWith('inventory.sqlite')) rmSync(path.join(dir, f));
      await assert.rejects(within('the failed start', GateServer.start({ dataDir: dir })), /is new but .*module holds 1 module files: restore the database from a backup, or move the module files away/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged module file is never run, and a genuine upload replaces it', async () => {
    const dir = freshDir();
    try {
      const owner = new Principal();
      let server = await GateServer.start({ dataDir: dir });
      const hello = wasm('examples/hello.wasm');
      const hash = await server.client(owner).upload(hello);
      await server.assertStopsPromptly();

      // "Hello" becomes "Jello" on disk.
      const file = path.join(dir, 'module', hash);
      const bytes = readFileSync(file);
      const at = bytes.indexOf('hello, world');
      assert.ok(at > 0);
      bytes[at] = 'j'.charCodeAt(0);
      chmodSync(file, 0o600);
      writeFileSync(file, bytes);

      server = await GateServer.start({ dataDir: dir });
      const client = server.client(owner);
      const damaged = await client.post(`/gate-0/module/sha256/${hash}?action=call&function=greet`, { headers: { Te: 'trailers' } });
      assert.equal(damaged.status, 500);
      assert.equal(damaged.text, `module ${hash} is damaged on the server: upload it again\n`);
      assert.equal(await client.upload(hello), hash);
      const healed = await client.post(`/gate-0/module/sha256/${hash}?action=call&function=greet`, { headers: { Te: 'trailers' } });
      assert.equal(healed.text, 'hello, world\n');
      await server.assertStopsPromptly();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('requests that arrive while the instances load are answered 503', async () => {
    const dir = freshDir();
    try {
      // A persistent instance to resume at the next start.
      const owner = new Principal();
      const first = await GateServer.start({ dataDir: dir });
      const client = first.client(owner);
      const id = await client.launch(await client.upload(wasm('examples/counter.wasm')), '&function=debug_count');
      await first.assertStopsPromptly();

      // Its restore waits until the test lets it go.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const inner = new InProcessExecutor({ cacheDir: testCacheDir });
      const slow: Executor = {
        prepare: (bytes, hash, pages) => inner.prepare(bytes, hash, pages),
        create: async (options: CreateOptions): Promise<ExecInstance> => {
          await held;
          return inner.create(options);
        },
        workers: () => inner.workers(),
        close: () => inner.close(),
      };
      const port = await freePort();
      const starting = startServer({ listen: { host: '127.0.0.1', port }, dataDir: dir, executor: slow, log: new Logger('silent') });
      const during = await within('an answer while loading', getWhenListening(`http://127.0.0.1:${port}/gate-0/`));
      assert.equal(during.status, 503);
      assert.equal(during.text, 'server is starting\n');
      release();
      const server = await starting;
      const again = new Client({ url: server.url, audience: `${server.url}/gate-0/` }, owner);
      assert.deepEqual(await again.status(id), { state: 'RUNNING' });
      await server.close();
      await inner.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('limits under concurrent requests, and slow request bodies', () => {
  it('concurrent calls and launches cannot pass a limit together; dripping bodies end with 408', async () => {
    const server = await GateServer.start({
      config: { 'access.anonymousprocs': 6, 'access.anonymoustimelimit': 2, 'principal.maxprocs': 4, 'http.bodytimeout': 2 },
    });
    try {
      const tenant = await CoTenant.launch(server);
      const loop = wasm('wat/loop.wasm');
      const calls = await Promise.all(Array.from({ length: 40 }, () => anonymousCall(server, loop, 'spin')));
      const ran = calls.filter((r) => r.status === 200);
      assert.ok(ran.length <= 6, `${ran.length} calls ran at once against a limit of 6`);
      for (const r of ran) assert.deepEqual(callStatus(r), { state: 'KILLED', error: 'run time limit exceeded (access.anonymoustimelimit = 2 s)' });
      for (const r of calls.filter((r) => r.status !== 200)) {
        assert.equal(r.status, 503);
        assert.equal(r.text, 'anonymous instance limit exceeded (access.anonymousprocs = 6)\n');
      }

      const mallory = server.client(new Principal());
      const hash = await mallory.upload(loop);
      const launches = await Promise.all(Array.from({ length: 20 }, () => mallory.post(`/gate-0/module/sha256/${hash}?action=launch&function=spin`)));
      assert.equal(launches.filter((r) => r.status === 200).length, 4);
      for (const r of launches.filter((r) => r.status !== 200)) assert.equal(r.text, 'running instance limit exceeded (principal.maxprocs = 4)\n');

      // An upload that announces 1,000 bytes and sends 10, and a websocket call that never says who it is.
      const drip = await within('the dripping upload to be answered', dripUpload(server.url, 1000, 10));
      assert.equal(drip.status, 408);
      assert.equal(drip.text, 'request timeout\n');
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/gate-0/module/sha256/${hash}?action=call&function=spin`);
      const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
      assert.deepEqual(await within('the silent websocket to be closed', closed), [1008, 'request timeout']);
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
    }
  });
});

/** A request that sends `sent` of `announced` body bytes and then nothing. */
function dripUpload(base: string, announced: number, sent: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/gate-0/module/sha256/${'0'.repeat(64)}?action=call`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/wasm', 'Content-Length': String(announced) },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.write(Buffer.alloc(sent));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET url as soon as something listens there. */
async function getWhenListening(url: string): Promise<{ status: number; text: string }> {
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        http
          .get(url, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
          })
          .on('error', reject);
      });
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
