// gate.computer/localhost against a real node:http server on loopback,
// driven by guest/services/localhost.c.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { createLocalhostService } from '../../src/services/localhost.ts';
import { nodeHttpTransport } from '../../src/services/node/localhost-http.ts';
import { Registry } from '../../src/services/registry.ts';
import { migrate, runToEnd, start } from './helpers.ts';

const HALTED = { state: 'HALTED', cause: 'NORMAL', result: 0 };

interface TestServer {
  server: http.Server;
  addr: string;
  held: Map<string, http.ServerResponse>;
  requests: string[];
  /** Resolves when n requests for paths starting with prefix are held. */
  holding(prefix: string, n: number): Promise<void>;
}

async function listen(): Promise<TestServer> {
  const held = new Map<string, http.ServerResponse>();
  const requests: string[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      requests.push(`${req.method} ${url} host=${req.headers.host}`);
      if (url.startsWith('/hello')) {
        res.setHeader('content-type', 'text/plain');
        res.end(`hello ${url}`);
      } else if (url === '/echo') {
        res.setHeader('content-type', req.headers['content-type'] ?? 'none');
        res.end(Buffer.concat(chunks));
      } else if (url === '/big') {
        res.end(Buffer.alloc(70000, 0x61));
      } else if (url.startsWith('/c/') || url === '/held') {
        held.set(url, res);
        for (const w of waiters.splice(0)) w();
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    addr: `http://127.0.0.1:${port}`,
    held,
    requests,
    holding(prefix, n) {
      return new Promise<void>((resolve) => {
        const check = (): void => {
          if ([...held.keys()].filter((k) => k.startsWith(prefix)).length >= n) resolve();
          else waiters.push(check);
        };
        check();
      });
    },
  };
}

function registryFor(addr: string): Registry {
  return new Registry().register(createLocalhostService({ addr, transport: nodeHttpTransport }));
}

describe('localhost', () => {
  let s: TestServer;
  before(async () => {
    s = await listen();
  });
  after(() => {
    s.server.closeAllConnections();
    s.server.close();
  });

  it('GET: status, content type and body; path and query are passed on', async () => {
    const { status, log } = await runToEnd('localhost', 'get', registryFor(s.addr));
    assert.deepEqual(status, HALTED);
    assert.equal(log, 'status=200 type=text/plain body=hello /hello?x=1\n');
    assert.equal(s.requests.at(-1), `GET /hello?x=1 host=${new URL(s.addr).host}`);
  });

  it('POST with a content type and body', async () => {
    const { log } = await runToEnd('localhost', 'post', registryFor(s.addr));
    assert.equal(log, 'status=200 type=text/plain body=ping\n');
  });

  it('a body too large for one reply packet is answered 502', async () => {
    const { status, log } = await runToEnd('localhost', 'big', registryFor(s.addr));
    assert.deepEqual(status, HALTED);
    assert.equal(log, 'status=502 type= body=\n');
  });

  it('an absolute URI is answered 400 without a request', async () => {
    const before = s.requests.length;
    const { log } = await runToEnd('localhost', 'bad', registryFor(s.addr));
    assert.equal(log, 'status=400 type= body=\n');
    assert.equal(s.requests.length, before);
  });

  it('a Call without a Request gets an empty reply', async () => {
    const { log } = await runToEnd('localhost', 'unknown', registryFor(s.addr));
    assert.equal(log, 'unknown=0\n');
  });

  it('unreachable server: 502', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { log } = await runToEnd('localhost', 'get', registryFor(`http://127.0.0.1:${port}`));
    assert.equal(log, 'status=502 type= body=\n');
  });

  it('is unavailable without configuration', async () => {
    const { log } = await runToEnd('localhost', 'get', new Registry());
    assert.equal(log, 'localhost unavailable\n');
  });

  it('concurrent requests: replies in completion order, index = position among outstanding calls', async () => {
    const r = await start('localhost', 'concurrent', registryFor(s.addr));
    await s.holding('/c/', 3);
    s.held.get('/c/c')!.end('c');
    await r.logged('index=2 body=c\n');
    s.held.get('/c/a')!.end('a');
    await r.logged('index=0 body=a\n');
    s.held.get('/c/b')!.end('b');
    assert.deepEqual(await r.done, HALTED);
    assert.equal(r.log(), 'sent\nindex=2 body=c\nindex=0 body=a\nindex=0 body=b\n');
  });

  it('an unanswered request survives snapshot and restore (sent again after resume)', async () => {
    const r = await start('localhost', 'held', registryFor(s.addr));
    await r.logged('sent\n');
    await s.holding('/held', 1);
    const first = s.held.get('/held')!;
    s.held.delete('/held');
    const { snapshot, restored } = await migrate(r, registryFor(s.addr));
    first.destroy();
    const saved = (await readSnapshot(snapshot)).state.channel.services;
    assert.equal(saved[0].name, 'gate.computer/localhost');
    assert.equal(saved[0].buffer[0], 1); // one saved request
    await s.holding('/held', 1);
    s.held.get('/held')!.end('again');
    assert.deepEqual(await restored.done, HALTED);
    assert.equal(restored.log(), 'status=200 type= body=again\n');
  });
});
