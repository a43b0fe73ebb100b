// Persistence: instances survive a restart of the real gate-server process
// (SIGTERM suspends and checkpoints them, the next start resumes them); a
// crash (SIGKILL) loses work since the last checkpoint but no module and no
// instance record.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, ioLines, Principal, readUntil, startTestServer, wasm } from './helpers.ts';
import { client, startProcess } from './processes.ts';

describe('gate-server restart', () => {
  let dataDir: string;
  const alice = new Principal();

  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-restart-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('continues a running instance after SIGTERM and a new process', async () => {
    const first = await startProcess(dataDir);
    const a = client(first.url, alice);
    const counter = await a.upload(wasm('examples/counter.wasm'), ['counter']);
    const id = await a.launch(counter, '&function=count');
    const before = await ioLines(a, id, /3\n/);
    assert.ok(before.startsWith('0\n1\n2\n3\n'));
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    const second = await startProcess(dataDir);
    try {
      const b = client(second.url, alice);
      assert.deepEqual(await b.status(id), { state: 'RUNNING' });
      const text = await ioLines(b, id, /\n\d+\n/);
      const n = Number(text.split('\n')[0]);
      assert.ok(n >= 4, `counting continued after the restart: ${JSON.stringify(text)}`);
      const pins = JSON.parse((await b.post('/gate-0/module/sha256/')).text);
      assert.deepEqual(pins, { modules: [{ module: counter, tags: ['counter'] }] });
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('keeps modules and instance records through a crash', async () => {
    const proc = await startProcess(dataDir);
    const c = client(proc.url, alice);
    const hello = await c.upload(wasm('examples/hello.wasm'));
    const id = await c.launch(hello, '&function=multi');
    proc.child.kill('SIGKILL');
    await proc.exited;

    const again = await startProcess(dataDir);
    try {
      const d = client(again.url, alice);
      // No checkpoint was taken: it starts over from its module, still serving.
      assert.deepEqual(await d.status(id), { state: 'RUNNING' });
      assert.equal((await d.post(`/gate-0/instance/${id}?action=io`)).text, 'hello, world\n');
      assert.equal((await d.request(`/gate-0/module/sha256/${hello}`)).status, 200);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });
});

describe('gate-server periodic checkpoints', () => {
  it('resumes from the last checkpoint after a crash', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-checkpoint-'));
    const alice = new Principal();
    try {
      const proc = await startProcess(dataDir, '-o', 'runtime.checkpoint=1', '-o', 'log.level=info');
      const checkpoints: string[] = [];
      proc.child.stderr!.on('data', (c: Buffer) => {
        for (const line of c.toString().split('\n')) if (line.includes('"instance checkpointed"')) checkpoints.push(line);
      });
      const c = client(proc.url, alice);
      const counter = await c.upload(wasm('examples/counter.wasm'));
      const id = await c.launch(counter, '&function=count');
      // An io connection spans checkpoints: it is taken up again after each.
      const req = http.request(`${c.base}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: c.auth() });
      req.flushHeaders();
      const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
      await readUntil(res, /\n3\n/);
      const seen = checkpoints.length;
      let text = await readUntil(res, /\n\d+\n/);
      while (checkpoints.length === seen) text = await readUntil(res, /\n\d+\n/);
      const after = await readUntil(res, /\n\d+\n/);
      const last = Number(after.trim().split('\n').at(-1));
      assert.ok(last > 3, `${text} ${after}`);
      req.destroy();
      proc.child.kill('SIGKILL');
      await proc.exited;

      const again = await startProcess(dataDir);
      try {
        const d = client(again.url, alice);
        assert.deepEqual(await d.status(id), { state: 'RUNNING' });
        const resumed = await ioLines(d, id, /\n\d+\n/);
        assert.ok(Number(resumed.split('\n')[0]) >= 4, `continued from a checkpoint: ${JSON.stringify(resumed)}`);
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('gate-server close() and startServer() on the same data dir', () => {
  it('keeps suspended and halted instances as they were, and drops transient ones', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-reopen-'));
    const alice = new Principal();
    try {
      let ts = await startTestServer({}, dataDir);
      let c = new Client(ts, alice);
      const counter = await c.upload(wasm('examples/counter.wasm'));
      const suspended = await c.launch(counter, '&function=count');
      await c.post(`/gate-0/instance/${suspended}?action=suspend&action=wait`);
      const start = await c.upload(wasm('wat/start.wasm'));
      const halted = await c.launch(start);
      assert.deepEqual(await c.wait(halted), { state: 'HALTED' });
      const deleted = await c.launch(counter, '&action=suspend');
      await c.post(`/gate-0/instance/${deleted}?action=delete`);
      const uuid = JSON.parse((await c.request('/gate-0/')).text).uuid;
      await ts.close();

      ts = await startTestServer({}, dataDir);
      c = new Client(ts, alice);
      try {
        assert.equal(JSON.parse((await c.request('/gate-0/')).text).uuid, uuid);
        assert.deepEqual(await c.status(suspended), { state: 'SUSPENDED' });
        assert.deepEqual(await c.status(halted), { state: 'HALTED' });
        assert.equal((await c.post(`/gate-0/instance/${deleted}`)).status, 404);
        const list = JSON.parse((await c.post('/gate-0/instance/')).text) as { instances: unknown[] };
        assert.equal(list.instances.length, 2);
        // The suspended one resumes where it was.
        assert.equal((await c.post(`/gate-0/instance/${suspended}?action=resume`)).status, 200);
        const text = await ioLines(c, suspended, /0\n/);
        assert.equal(text, '0\n');
      } finally {
        await ts.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
