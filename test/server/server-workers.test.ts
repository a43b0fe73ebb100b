// gate-server with instances in worker threads (the WorkerExecutor passed as
// the executor option): the main actions work the same way.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer, type RunningServer } from '../../src/server/server.ts';
import { WorkerExecutor } from '../../src/server/exec/worker-executor.ts';
import { Client, Principal, readUntil, sha256, testCacheDir, wasm } from './helpers.ts';

describe('gate-server on worker threads', () => {
  let dir: string;
  let executor: WorkerExecutor;
  let server: RunningServer;
  let alice: Client;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gate-workers-'));
    executor = new WorkerExecutor({ workers: 1, cacheDir: testCacheDir });
    server = await startServer({ listen: { host: '127.0.0.1', port: 0 }, dataDir: dir, executor, log: new Logger('silent') });
    alice = new Client({ url: server.url, audience: `${server.url}/gate-0/` }, new Principal());
  });
  after(async () => {
    await server.close();
    await executor.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls, launches, suspends, resumes and snapshots', async () => {
    const hello = wasm('examples/hello.wasm');
    const call = await new Client({ url: server.url, audience: '' }).post(`/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, {
      headers: { 'Content-Type': 'application/wasm', Te: 'trailers' },
      body: hello,
    });
    assert.equal(call.text, 'hello, world\n');
    assert.equal(call.trailers['gate-status'], '{"state":"TERMINATED"}');

    const counter = await alice.upload(wasm('examples/counter.wasm'));
    const id = await alice.launch(counter, '&function=count');
    const io = async (pattern: RegExp) => {
      const req = http.request(`${server.url}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: alice.auth() });
      req.flushHeaders();
      const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
      const text = await readUntil(res, pattern);
      req.destroy();
      return text;
    };
    assert.ok((await io(/1\n/)).startsWith('0\n1\n'));
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=suspend&action=wait`)).headers['gate-status'], '{"state":"SUSPENDED"}');
    const snap = await alice.post(`/gate-0/instance/${id}?action=snapshot`);
    assert.equal(snap.status, 201);
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume`)).status, 200);
    const next = await io(/\n\d+\n/);
    assert.ok(Number(next.split('\n')[0]) >= 2, next);
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
  });
});
