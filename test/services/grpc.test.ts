// External services over gRPC: the example service (src/services/node/grpc/example.ts)
// served on a Unix socket, connected with connectExternalServices, discovered
// and called by guest/services/external.c.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { connectExternalServices, type ExternalConnection } from '../../src/services/node/grpc/client.ts';
import { EXAMPLE_NAME, exampleServer, serveExample } from '../../src/services/node/grpc/example.ts';
import { buildRegistry } from '../../src/services/config.ts';
import { Harness, settle } from '../../src/services/servicetest.ts';
import { runToEnd } from './helpers.ts';

describe('external services over gRPC', () => {
  let dir: string;
  let server: grpc.Server;
  let conn: ExternalConnection;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gate-grpc-'));
    server = exampleServer();
    await serveExample(server, `unix:${path.join(dir, 'example.sock')}`);
    conn = await connectExternalServices({ target: `unix:${path.join(dir, 'example.sock')}`, insecure: true });
  });
  after(() => {
    conn.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('Init lists the example service', () => {
    assert.deepEqual(
      conn.services.map((s) => [s.factory.name, s.factory.revision, s.available === undefined]),
      [[EXAMPLE_NAME, '1', true]],
    );
  });

  it('a program discovers and calls it; the catalog lists it', async () => {
    const registry = buildRegistry({}, undefined, { extra: conn.services });
    const { status, log } = await runToEnd('external', 'main', registry);
    assert.equal(status.state, 'HALTED', log);
    assert.equal(log, 'count=1 echo=hello\ncount=2 echo=again\n');
    const catalog = await runToEnd('catalog', 'main', registry);
    assert.match(catalog.log, /"name": "example.net\/counter",\n\t\t\t"revision": "1"/);
  });

  it('is unavailable when access is denied to the principal, or not connected', async () => {
    const denied = buildRegistry({ access: { [EXAMPLE_NAME]: { anonymous: false } } }, undefined, { extra: conn.services });
    assert.equal((await runToEnd('external', 'main', denied)).log, 'counter unavailable\n');
    assert.equal((await runToEnd('external', 'main', buildRegistry({}))).log, 'counter unavailable\n');
  });

  it('suspend: Suspend + Snapshot save the remote state; Create restores it', async () => {
    const factory = conn.services[0].factory;
    const h = new Harness(factory);
    h.call('one');
    h.call('two');
    while (h.sent.length < 2) await settle();
    h.take();
    h.call('pending'); // may or may not be handled before the end of the run
    await h.instance.prepareShutdown!(true);
    const saved = h.shutdown();
    assert.ok(saved.length > 0);

    const r = new Harness(factory, saved);
    r.call('three');
    while (r.sent.length < 2) await settle();
    const replies = r.take().map((s) => ('call' in s ? Buffer.from(s.call) : Buffer.alloc(0)));
    assert.deepEqual(
      replies.map((b) => `${b.readUInt32LE(0)} ${b.subarray(4)}`),
      ['3 pending', '4 three'],
    );
    await r.instance.prepareShutdown!(false);
    assert.deepEqual(r.shutdown(), new Uint8Array(0));
  });

  it('a service that cannot restore its snapshot ends the run', async () => {
    const h = new Harness(conn.services[0].factory, new Uint8Array([1, 2, 3]));
    while (h.aborts.length === 0) await settle();
    assert.match(h.aborts[0].message, /restoration failed: malformed snapshot/);
    h.shutdown();
  });
});

describe('external services in a child process', () => {
  it('spawns the example with a socket on fd 3; a program calls it', async () => {
    const { spawnExternalServices, parseCommand } = await import('../../src/services/node/grpc/spawn.ts');
    assert.deepEqual(parseCommand('@/bin/x name -a  b'), { file: '/bin/x', argv0: 'name', args: ['-a', 'b'] });
    assert.deepEqual(parseCommand('svc -v'), { file: 'svc', argv0: 'svc', args: ['-v'] });
    const example = new URL('../../src/services/node/grpc/example.ts', import.meta.url).pathname;
    const spawned = await spawnExternalServices(`${process.execPath} ${example}`);
    try {
      assert.deepEqual(spawned.services.map((s) => s.factory.name), [EXAMPLE_NAME]);
      const registry = buildRegistry({}, undefined, { extra: spawned.services });
      const { log } = await runToEnd('external', 'main', registry);
      assert.equal(log, 'count=1 echo=hello\ncount=2 echo=again\n');
    } finally {
      spawned.close();
    }
  });
});

describe('startServices (Node server configuration)', () => {
  it('targets: connects, registers, and skips failing optional targets', async () => {
    const { startServices, parseTarget } = await import('../../src/services/node/registry.ts');
    assert.deepEqual(parseTarget('unix:/x insecure optional'), { target: 'unix:/x', insecure: true, optional: true });
    assert.throws(() => parseTarget('unix:/x tls'), { code: 'ERR_SERVICE_CONFIG' });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-grpc-'));
    const server = exampleServer();
    await serveExample(server, `unix:${path.join(dir, 'a.sock')}`);
    const logged: string[] = [];
    const running = await startServices(
      {
        grpc: { targets: [`unix:${path.join(dir, 'a.sock')} insecure`, `unix:${path.join(dir, 'none.sock')} insecure optional`] },
        peer: { enabled: true },
      },
      { log: (m) => logged.push(m) },
    );
    try {
      assert.equal(logged.length, 1);
      assert.match(logged[0], /optional external services at unix:.*none\.sock skipped/);
      const catalog = await runToEnd('catalog', 'main', running.registry);
      const names = JSON.parse(catalog.log.slice(0, catalog.log.lastIndexOf('}\n') + 2)).services.map((s: { name: string }) => s.name);
      assert.deepEqual(names, ['catalog', EXAMPLE_NAME, 'identity', 'origin', 'peer', 'random', 'scope']);
      assert.equal((await runToEnd('external', 'main', running.registry)).log, 'count=1 echo=hello\ncount=2 echo=again\n');
    } finally {
      running.close();
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
