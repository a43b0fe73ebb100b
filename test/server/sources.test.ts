// Module sources (api.md §7, server.md §6): a configured HTTP source serves
// modules by URI; fetch outcomes map to Gate's statuses.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, Principal, request, sha256, startTestServer, wasm, type TestServer } from './helpers.ts';

describe('gate-server HTTP module source', () => {
  let origin: http.Server;
  let ts: TestServer;
  const hello = wasm('examples/hello.wasm');
  const requests: { url: string; range?: string }[] = [];

  before(async () => {
    origin = http.createServer((req, res) => {
      requests.push({ url: req.url!, range: req.headers.range });
      if (req.url === '/files/hello.wasm') {
        res.writeHead(200, { 'Content-Length': hello.byteLength });
        res.end(hello);
      } else if (req.url === '/files/big.wasm') {
        res.writeHead(200, { 'Content-Length': 10 * 1024 * 1024 });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const port = (origin.address() as AddressInfo).port;
    ts = await startTestServer({ source: { ipfs: { addr: '' }, http: [{ name: 'files', addr: `http://127.0.0.1:${port}` }] }, principal: { maxmodulesize: 1024 * 1024 } });
  });
  after(async () => {
    await ts.close();
    origin.close();
  });

  it('lists the source and answers existence checks', async () => {
    assert.deepEqual(JSON.parse((await request(`${ts.url}/gate-0/module/`)).text), ['files', 'sha256']);
    assert.equal((await request(`${ts.url}/gate-0/module/files/`)).status, 200);
    assert.equal((await request(`${ts.url}/gate-0/module/files/hello.wasm`)).status, 200);
    const dirPost = await request(`${ts.url}/gate-0/module/files/`, { method: 'POST' });
    assert.equal(dirPost.status, 405);
    assert.equal(dirPost.headers.allow, 'GET, HEAD, OPTIONS');
  });

  it('calls a source module anonymously', async () => {
    const r = await new Client(ts).post('/gate-0/module/files/hello.wasm?action=call&function=greet', { headers: { Te: 'trailers' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello, world\n');
    assert.equal(r.trailers['gate-status'], '{"state":"TERMINATED"}');
    assert.equal(requests.at(-1)!.range, `bytes=0-${1024 * 1024 - 1}`);
  });

  it('pins a source module for a principal with a Location', async () => {
    const alice = new Client(ts, new Principal());
    const r = await alice.post('/gate-0/module/files/hello.wasm?action=pin');
    assert.equal(r.status, 201);
    assert.equal(r.headers.location, `/gate-0/module/sha256/${sha256(hello)}`);
    assert.equal((await alice.request(r.headers.location as string)).status, 200);
    const launch = await alice.post('/gate-0/module/files/hello.wasm?action=launch&function=multi');
    assert.equal(launch.status, 200);
    await alice.post(`/gate-0/instance/${launch.headers['gate-instance']}?action=kill&action=wait`);
  });

  it('maps not found and too large', async () => {
    const missing = await new Client(ts).post('/gate-0/module/files/nothing.wasm?action=call');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'module not found\n');
    const big = await new Client(ts).post('/gate-0/module/files/big.wasm?action=call');
    assert.equal(big.status, 400);
    assert.equal(big.text, 'program size limit exceeded\n');
    assert.equal((await new Client(ts).post('/gate-0/module/files/hello.wasm')).status, 501);
  });
});

describe('gate-server IPFS module source', () => {
  it('fetches through the IPFS HTTP API', async () => {
    const hello = wasm('examples/hello.wasm');
    const seen: string[] = [];
    const api = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'POST' && req.url!.startsWith('/api/v0/cat?arg=/ipfs/QmHello&')) {
        res.writeHead(200, { 'X-Content-Length': String(hello.byteLength) });
        res.end(hello);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const ts = await startTestServer({ source: { ipfs: { addr: `http://127.0.0.1:${(api.address() as AddressInfo).port}` }, http: [] } });
    try {
      const r = await new Client(ts).post('/gate-0/module/ipfs/QmHello?action=call&function=greet');
      assert.equal(r.text, 'hello, world\n');
      assert.match(seen[0], /^POST \/api\/v0\/cat\?arg=\/ipfs\/QmHello&length=\d+$/);
      assert.equal((await new Client(ts).post('/gate-0/module/ipfs/QmNothing?action=call')).status, 404);
      // The IPFS source accepts only alphanumeric names.
      assert.equal((await new Client(ts).post('/gate-0/module/ipfs/bad-name?action=call')).status, 500);
    } finally {
      await ts.close();
      api.close();
    }
  });
});
