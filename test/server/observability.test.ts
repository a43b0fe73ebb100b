// Structured logs (JSON lines with Gate's event types), Prometheus metrics,
// and the pluggable executor option.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InProcessExecutor, type CreateOptions, type ExecInstance, type Executor } from '../../src/server/exec/executor.ts';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer } from '../../src/server/server.ts';
import { Client, Principal, request, sha256, startTestServer, testCacheDir, wasm } from './helpers.ts';

describe('gate-server logs and metrics', () => {
  it('logs JSON lines with event records and counts calls, latencies and instances', async () => {
    const ts = await startTestServer();
    try {
      const alice = new Client(ts, new Principal());
      const hello = wasm('examples/hello.wasm');
      const hash = sha256(hello);
      await new Client(ts).post(`/gate-0/module/sha256/${hash}?action=call&function=greet`, { headers: { 'Content-Type': 'application/wasm' }, body: hello });
      await alice.upload(hello);
      const id = await alice.launch(hash, '&function=multi');
      await alice.post(`/gate-0/instance/${id}?action=io`);
      await alice.post('/gate-0/instance/', { headers: { Authorization: 'Bearer nonsense' } });

      const records = ts.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const r of records) {
        assert.equal(typeof r.time, 'string');
        assert.equal(typeof r.level, 'string');
        assert.equal(typeof r.msg, 'string');
      }
      const events = records.filter((r) => r.msg === 'server: event').map((r) => r.type);
      for (const type of ['MODULE_UPLOAD_NEW', 'MODULE_PIN', 'INSTANCE_CREATE_STREAM', 'INSTANCE_CREATE_KNOWN', 'INSTANCE_STOP', 'INSTANCE_DELETE', 'INSTANCE_CONNECT', 'INSTANCE_DISCONNECT', 'FAIL_REQUEST']) {
        assert.ok(events.includes(type), `${type} in ${events.join(',')}`);
      }
      const create = records.find((r) => r.type === 'INSTANCE_CREATE_KNOWN') as { principal: string; instance: { instance: string } };
      assert.equal(create.principal, alice.principal!.id);
      assert.equal(create.instance.instance, id);
      assert.ok(records.some((r) => r.msg === 'webserver: request handled' && r.status === 401));

      const m = (await request(`${ts.url}/metrics`)).text;
      assert.match(m, /^gate_calls_total\{transport="http"\} 1$/m);
      assert.match(m, /^gate_call_duration_seconds_count\{transport="http"\} 1$/m);
      assert.match(m, /^gate_instances\{state="RUNNING"\} 1$/m);
      assert.match(m, /^gate_instance_memory_limit_bytes [1-9]\d*$/m);
      assert.match(m, /^gate_auth_failures_total\{type="AUTH_INVALID"\} 1$/m);
      assert.match(m, /^gate_http_request_duration_seconds_bucket\{route="module",le="\+Inf"\} \d+$/m);
      assert.match(m, /^process_resident_memory_bytes \d+$/m);
      await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
      assert.match((await request(`${ts.url}/metrics`)).text, /^gate_instances\{state="KILLED"\} 1$/m);
    } finally {
      await ts.close();
    }
  });
});

describe('gate-server client errors and log formats', () => {
  it('logs client errors as Gate does: FAIL_REQUEST with the fail type, FAIL_PROTOCOL for malformed requests', async () => {
    const ts = await startTestServer();
    try {
      const alice = new Client(ts, new Principal());
      const hello = wasm('examples/hello.wasm');
      await alice.request(`/gate-0/module/sha256/${'0'.repeat(64)}?action=pin`, { method: 'PUT', headers: { 'Content-Type': 'application/wasm' }, body: hello });
      const junk = new TextEncoder().encode('junk');
      await alice.request(`/gate-0/module/sha256/${sha256(junk)}?action=pin`, { method: 'PUT', headers: { 'Content-Type': 'application/wasm' }, body: junk });
      await alice.post(`/gate-0/instance/${crypto.randomUUID()}?action=wait`);
      await alice.post('/gate-0/instance/?action=nonsense;');
      const failures = ts.logs.map((l) => JSON.parse(l) as { type?: string; fail?: { type: string }; error?: string }).filter((r) => r.type?.startsWith('FAIL_'));
      assert.deepEqual(
        failures.map((r) => [r.type, r.fail?.type, r.error]),
        [
          ['FAIL_REQUEST', 'MODULE_HASH_MISMATCH', 'module hash does not match content'],
          ['FAIL_REQUEST', 'MODULE_ERROR', 'not a WebAssembly module'],
          ['FAIL_REQUEST', 'INSTANCE_NOT_FOUND', 'instance not found'],
          ['FAIL_PROTOCOL', undefined, 'query string decode error'],
        ],
      );
    } finally {
      await ts.close();
    }
  });

  it('writes readable lines in text format, JSON lines otherwise', () => {
    const lines: string[] = [];
    new Logger('info', { sink: (l) => lines.push(l), format: 'text' }).event('INSTANCE_STOP', { principal: 'local', instance: { instance: 'i1', status: { state: 'HALTED' } }, error: 'two words' });
    assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  server: event type=INSTANCE_STOP principal=local instance\.instance=i1 instance\.status\.state=HALTED error="two words"\n$/);
    new Logger('info', { sink: (l) => lines.push(l), format: 'json' }).info('hello', { n: 1n });
    assert.deepEqual(Object.keys(JSON.parse(lines[1]) as object), ['time', 'level', 'msg', 'n']);
    assert.throws(() => new Logger('info', { format: 'xml' }), /unknown log\.format/);
  });
});

describe('gate-server executor option', () => {
  it('runs instances on the executor it is given', async () => {
    const inner = new InProcessExecutor({ cacheDir: testCacheDir });
    const created: string[] = [];
    const executor: Executor = {
      prepare: (bytes, hash, pages) => inner.prepare(bytes, hash, pages),
      create: (options: CreateOptions): Promise<ExecInstance> => {
        created.push(options.context.instance);
        return inner.create(options);
      },
      workers: () => [{ id: 7, instances: created.length, stuck: false }],
      close: () => inner.close(),
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-exec-'));
    const server = await startServer({ listen: { host: '127.0.0.1', port: 0 }, dataDir: dir, executor, log: new Logger('silent') });
    try {
      const alice = new Client({ url: server.url, audience: `${server.url}/gate-0/` }, new Principal());
      const hash = await alice.upload(wasm('examples/hello.wasm'));
      const r = await alice.post(`/gate-0/module/sha256/${hash}?action=call&function=greet`);
      assert.equal(r.text, 'hello, world\n');
      assert.deepEqual(created, [r.headers['gate-instance']]);
      assert.match((await request(`${server.url}/metrics`)).text, /^gate_worker_instances\{worker="7",stuck="0"\} 1$/m);
    } finally {
      await server.close();
      await inner.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
