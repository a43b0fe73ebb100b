// Several gate-servers on one PostgreSQL (started here; the tests are
// skipped, saying why, without it): a module pinned through one server is
// listed and callable through another; an instance launched on one is
// reached through another (it moves there, its state intact); when a
// server is killed (SIGKILL), another takes its instances over from their
// last checkpoint and says what was lost.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresMissing, startPostgres, type Postgres } from '../postgres.ts';
import { Client, ioLines, Principal, sha256, startTestServer, wasm, type TestServer } from './helpers.ts';
import { client, startProcess } from './processes.ts';

const missing = postgresMissing();

/** The first number of io output (a line of examples/counter.wasm). */
const firstNumber = (text: string) => Number(text.split('\n')[0]);

if (missing) {
  it.skip(`cluster (${missing})`);
} else {
  describe('cluster: servers sharing one PostgreSQL', () => {
    let pg: Postgres;
    let database: string;
    let a: TestServer;
    let b: TestServer;
    const alice = new Principal();

    before(async () => {
      pg = await startPostgres();
      database = await pg.createDatabase();
      const config = (n: number) => ({
        database: { url: database, lease: 1 },
        runtime: { workers: 0 },
        // Each server's peer hubs on a channel of its own: they meet through the database (cluster-peers.test.ts).
        service: { peer: { enabled: true, channel: `gate-peer-cluster-test-${process.pid}-${n}` } },
      });
      a = await startTestServer(config(1));
      b = await startTestServer(config(2));
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await pg?.stop();
    });

    it('lists and calls through B a module pinned through A', async () => {
      const onA = new Client(a, alice);
      const onB = new Client(b, alice);
      const hello = await onA.upload(wasm('examples/hello.wasm'), ['hello']);
      const pins = JSON.parse((await onB.post('/gate-0/module/sha256/')).text);
      assert.deepEqual(pins, { modules: [{ module: hello, tags: ['hello'] }] });
      const call = await onB.post(`/gate-0/module/sha256/${hello}?action=call&function=greet`);
      assert.equal(call.status, 200, call.text);
      assert.equal(call.text, 'hello, world\n');
      const download = await onB.request(`/gate-0/module/sha256/${hello}`, { headers: { Accept: 'application/wasm' } });
      assert.equal(sha256(download.body), hello);
    });

    it('moves an instance launched on A to B when B is asked for it, where it goes on', async () => {
      const onA = new Client(a, alice);
      const onB = new Client(b, alice);
      const counter = await onA.upload(wasm('examples/counter.wasm'));
      const id = await onA.launch(counter, '&function=count');
      const seen = await ioLines(onA, id, /\n3\n/);
      assert.ok(seen.startsWith('0\n'));
      // Listed and described through B while A runs it.
      const listed = JSON.parse((await onB.post('/gate-0/instance/')).text) as { instances: { instance: string }[] };
      assert.ok(listed.instances.some((i) => i.instance === id));
      assert.deepEqual(await onB.status(id), { state: 'RUNNING' });
      // io through B moves it: it continues where it was, not from 0.
      const there = await ioLines(onB, id, /\n\d+\n/);
      assert.ok(firstNumber(there) >= 4, `continued on B: ${JSON.stringify(there)}`);
      assert.ok(b.logs.some((l) => l.includes('instance moved here')));
      // And back to A, suspended on the way by a suspend through A.
      await onA.post(`/gate-0/instance/${id}?action=suspend&action=wait`);
      assert.deepEqual(await onB.status(id), { state: 'SUSPENDED' });
      const resumed = await onB.post(`/gate-0/instance/${id}?action=resume`);
      assert.equal(resumed.status, 200, resumed.text);
      const again = await ioLines(onB, id, /\n\d+\n/);
      assert.ok(firstNumber(again) > firstNumber(there), `continued after the suspension: ${JSON.stringify(again)}`);
      // Its id is taken on every server.
      const duplicate = await onA.post(`/gate-0/module/sha256/${counter}?action=launch&action=suspend&instance=${id}`);
      assert.equal(duplicate.status, 409, duplicate.text);
      await onB.post(`/gate-0/instance/${id}?action=kill&action=wait`);
      assert.equal((await onA.post(`/gate-0/instance/${id}?action=delete`)).status, 200);
      assert.equal((await onB.post(`/gate-0/instance/${id}`)).status, 404);
    });
  });

  describe('cluster: failover', () => {
    let pg: Postgres;
    const dirs: string[] = [];
    before(async () => {
      pg = await startPostgres();
    });
    after(async () => {
      await pg?.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('resumes on B from their last checkpoint the instances of A after A is killed, saying what was lost', async () => {
      const database = await pg.createDatabase();
      const dir = () => {
        const d = mkdtempSync(path.join(os.tmpdir(), 'gate-cluster-'));
        dirs.push(d);
        return d;
      };
      const options = ['--database', database, '-o', 'database.lease=1', '-o', 'runtime.checkpoint=1', '-o', 'log.level=info'];
      const procA = await startProcess(dir(), ...options);
      const procB = await startProcess(dir(), ...options);
      const alice = new Principal();
      const checkpoints: string[] = [];
      procA.child.stderr!.on('data', (c: Buffer) => {
        for (const line of c.toString().split('\n')) if (line.includes('"instance checkpointed"')) checkpoints.push(line);
      });
      try {
        const onA = client(procA.url, alice);
        const onB = client(procB.url, alice);
        const counter = await onA.upload(wasm('examples/counter.wasm'));
        const id = await onA.launch(counter, '&function=count');
        const idle = await onA.launch(counter, '&action=suspend');
        // Until a checkpoint of the running one has been written.
        let text = await ioLines(onA, id, /\n3\n/);
        while (checkpoints.length === 0) text = await ioLines(onA, id, /\n\d+\n/);
        procA.child.kill('SIGKILL');
        await procA.exited;

        // Through B: it waits for A's lease to run out, takes over, and the counting goes on from the checkpoint.
        const resumed = await ioLines(onB, id, /\n\d+\n/);
        assert.ok(firstNumber(resumed) >= 1, `resumed from a checkpoint, not from its module: ${JSON.stringify(resumed)} after ${JSON.stringify(text)}`);
        const info = JSON.parse((await onB.post(`/gate-0/instance/${id}`)).text) as { status: unknown; note: string };
        assert.deepEqual(info.status, { state: 'RUNNING' });
        assert.match(info.note, /^taken over from server \S+ .*resumed from its checkpoint of \S+: work after it lost$/);
        const idleInfo = JSON.parse((await onB.post(`/gate-0/instance/${idle}`)).text) as { status: unknown; note: string };
        assert.deepEqual(idleInfo.status, { state: 'HALTED' });
        assert.match(idleInfo.note, /it was not running: nothing lost/);
      } finally {
        procA.child.kill('SIGKILL');
        procB.child.kill('SIGTERM');
        await procB.exited;
      }
    });
  });
}
