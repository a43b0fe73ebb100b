// Runaway programs (issue items 1 and 2): loops of bulk operations that do
// milliseconds of work per iteration in a few bytes of code, and a loop that
// cannot be unwound, run by anonymous callers against the gate-server
// command; and a worker that nothing can interrupt, made by the executor's
// test hook, in a server with instances in worker processes.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer } from '../../src/server/server.ts';
import { WorkerExecutor, type WorkerLostReport } from '../../src/server/exec/worker-executor.ts';
import { Client, Principal, testCacheDir, wasm } from '../server/helpers.ts';
import { anonymousCall, callStatus, CoTenant, GateServer, neverSeenHello, SHUTDOWN_WITHIN_MS, waitFor, within } from './harness.ts';

describe('runaway programs against gate-server', () => {
  it('bulk-operation loops and a loop holding a reference are stopped by named limits; a co-tenant is not disturbed', async () => {
    const server = await GateServer.start({ config: { 'access.anonymoustimelimit': 3 } });
    try {
      const tenant = await CoTenant.launch(server);
      const bulk = wasm('wat/bulk.wasm');
      // Two attacks per worker, all at once.
      const attacks = [
        anonymousCall(server, bulk, 'fill'),
        anonymousCall(server, bulk, 'copy'),
        anonymousCall(server, wasm('wat/table_copy.wasm'), 'spin'),
        anonymousCall(server, wasm('wat/refloop.wasm'), 'spin'),
      ];
      await tenant.assertHealthy();
      const [fill, copy, table, ref] = (await within('the attacks to end', Promise.all(attacks))).map(callStatus);
      const timeLimit = { state: 'KILLED', error: 'run time limit exceeded (access.anonymoustimelimit = 3 s)' };
      assert.deepEqual(fill, timeLimit);
      assert.deepEqual(copy, timeLimit);
      assert.deepEqual(table, timeLimit);
      assert.deepEqual(ref, timeLimit);
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
    }
  });

  it('SIGTERM ends a server whose instances run bulk loops within seconds, and they resume at the next start', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gate-hostile-'));
    try {
      let server = await GateServer.start({ dataDir });
      const owner = new Principal();
      const client = server.client(owner);
      const hash = await client.upload(wasm('wat/bulk.wasm'));
      const ids = [await client.launch(hash, '&function=fill'), await client.launch(hash, '&function=copy')];
      await waitFor('checkpoints of both', () => ids.every((id) => server.logged('instance checkpointed', { instance: id }).length > 0));
      await server.assertStopsPromptly();

      server = await GateServer.start({ dataDir });
      const again = server.client(owner);
      for (const id of ids) assert.deepEqual(await again.status(id), { state: 'RUNNING' });
      await waitFor('new checkpoints after the restart', () => ids.every((id) => server.logged('instance checkpointed', { instance: id }).length > 0));
      await server.assertStopsPromptly();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a worker that nothing can interrupt, or that runs out of heap', () => {
  for (const how of ['loop', 'heap'] as const) {
    it(`(${how}) is killed or dies; the offender ends naming the limit, co-tenants on it resume from their last checkpoint elsewhere`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-hostile-'));
      const reports: WorkerLostReport[] = [];
      const executor = new WorkerExecutor({
        workers: 2,
        cacheDir: testCacheDir,
        testHooks: true,
        heartbeatInterval: 200,
        stuckTimeout: 2000,
        workerHeapMiB: 96,
        keys: { watchdog: 'runtime.watchdog', workerHeap: 'runtime.workerheap' },
        onWorkerLost: (r) => reports.push(r),
      });
      const logs: Record<string, unknown>[] = [];
      const server = await startServer({
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        executor,
        config: { runtime: { checkpoint: 1, cachedir: testCacheDir, workers: 2 } },
        log: new Logger('info', (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
      });
      try {
        const site = { url: server.url, audience: `${server.url}/gate-0/` };
        const bob = new Client(site, new Principal());
        const eve = new Client(site, new Principal());
        const counter = await bob.upload(wasm('examples/counter.wasm'));
        // Bob's instances on both workers, then Eve's.
        const tenants = [await bob.launch(counter, '&function=debug_count'), await bob.launch(counter, '&function=debug_count')];
        const evil = await eve.launch(await eve.upload(wasm('examples/counter.wasm')), '&function=debug_count');
        const checkpointsOf = (id: string) => new Set(logs.filter((l) => l.msg === 'instance checkpointed' && l.instance === id).map((l) => l.module));
        await waitFor('first checkpoints', () => tenants.every((id) => checkpointsOf(id).size > 0));

        executor.blockWorkerForTest(undefined, evil, how);
        await waitFor('the watchdog', () => reports.length > 0);
        assert.equal(reports[0].kind, how === 'loop' ? 'stuck' : 'heap');
        assert.equal(reports[0].offender, evil);
        const bystanders = reports[0].instances.filter((id) => id !== evil);
        assert.ok(bystanders.length > 0 && bystanders.every((id) => tenants.includes(id)), 'a co-tenant shared the worker');

        const status = await eve.wait(evil);
        assert.deepEqual(status, {
          state: 'KILLED',
          error:
            how === 'loop'
              ? 'the program held its worker for 2 s without letting it answer (runtime.watchdog = 2)'
              : "the program's worker ran out of memory (runtime.workerheap = 96 MiB)",
        });
        for (const id of tenants) {
          const before = checkpointsOf(id).size;
          assert.deepEqual(await bob.status(id), { state: 'RUNNING' });
          await waitFor('checkpoints after the loss', () => checkpointsOf(id).size >= before + 2);
        }
        assert.ok(logs.some((l) => l.msg === 'instance restored from its last checkpoint' && bystanders.includes(l.instance as string)));

        const reply = await within('a never-seen module', anonymousCall(site, neverSeenHello(), 'greet'));
        assert.equal(reply.text, 'hello, world\n');
      } finally {
        const began = performance.now();
        await server.close();
        await executor.close();
        assert.ok(performance.now() - began < SHUTDOWN_WITHIN_MS, 'closed within seconds');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('does not keep the executor from closing', async () => {
    const executor = new WorkerExecutor({ workers: 1, cacheDir: testCacheDir, testHooks: true });
    executor.blockWorkerForTest(executor.workers()[0].id);
    const began = performance.now();
    await executor.close();
    assert.ok(performance.now() - began < SHUTDOWN_WITHIN_MS);
  });
});

