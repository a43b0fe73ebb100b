import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { FlatError, decodeCall, decodeResponse, encodeCall, encodeEmptyCall, encodeResponse } from './flat.ts';
import { createLocalhostService, parseLocalhostAddr, resolveLocalUri } from './localhost.ts';
import { nodeHttpTransport } from './node/localhost-http.ts';
import { Harness, settle } from './servicetest.ts';

test('flat: Call and Response round trips', () => {
  const body = Uint8Array.of(1, 2, 3);
  assert.deepEqual(decodeCall(encodeCall({ method: 'PUT', uri: '/x', contentType: 't/x', body })), {
    method: 'PUT',
    uri: '/x',
    contentType: 't/x',
    body,
  });
  assert.equal(decodeCall(encodeEmptyCall()), null);
  assert.deepEqual(decodeResponse(encodeResponse({ statusCode: 404 })), {
    statusCode: 404,
    contentType: '',
    body: new Uint8Array(0),
  });
});

test('flat: malformed buffers are rejected, never read out of bounds', () => {
  const good = encodeCall({ uri: '/abc', body: new Uint8Array(10) });
  assert.throws(() => decodeCall(new Uint8Array(4)), FlatError);
  for (let cut = 8; cut < good.length; cut += 3) {
    try {
      decodeCall(good.subarray(0, cut));
    } catch (e) {
      assert.ok(e instanceof FlatError);
    }
  }
  const bad = good.slice();
  new DataView(bad.buffer).setUint32(0, 0xfffffff0, true);
  assert.throws(() => decodeCall(bad), FlatError);
});

test('localhost: address and URI rules', () => {
  assert.deepEqual(parseLocalhostAddr('http://127.0.0.1:8080'), { scheme: 'http', authority: '127.0.0.1:8080' });
  assert.deepEqual(parseLocalhostAddr('unix:///run/x.sock'), { scheme: 'http', authority: 'localhost', socketPath: '/run/x.sock' });
  for (const bad of ['', 'ftp://x', 'http://x/path', 'unix://host/x', 'http://u@x']) {
    assert.throws(() => parseLocalhostAddr(bad), RangeError, bad);
  }
  assert.deepEqual(resolveLocalUri('/a/b?c=d#frag'), { path: '/a/b?c=d' });
  assert.deepEqual(resolveLocalUri('//name/p'), { path: '/p', host: 'name' });
  assert.equal(resolveLocalUri('//name:80/p'), null);
  assert.equal(resolveLocalUri('http://x/'), null);
});

test('localhost: Unix socket transport, Host from the URI, no redirects followed', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-localhost-'));
  const sock = path.join(dir, 's.sock');
  const server = http.createServer((req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://example.invalid/' });
      res.end();
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`host=${req.headers.host}`);
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    const h = new Harness(createLocalhostService({ addr: `unix://${sock}`, transport: nodeHttpTransport }));
    h.call(encodeCall({ uri: '/' }));
    h.call(encodeCall({ uri: '//virtual/' }));
    h.call(encodeCall({ uri: '/redirect' }));
    while (h.sent.length < 3) await settle();
    const replies = h.take().map((s) => ('call' in s ? decodeResponse(s.call) : null)!);
    const byBody = replies.map((r) => `${r.statusCode} ${new TextDecoder().decode(r.body)}`).sort();
    assert.deepEqual(byBody, ['200 host=localhost', '200 host=virtual', '302 ']);
    assert.deepEqual(h.shutdown(), new Uint8Array(0));
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('localhost: beyond maxOutstanding calls are answered 503 at once; malformed Call → empty reply', () => {
  const never = (): Promise<never> => new Promise(() => {});
  const h = new Harness(createLocalhostService({ addr: 'http://127.0.0.1:1', transport: never, maxOutstanding: 2 }));
  h.call(encodeCall({ uri: '/1' }));
  h.call(encodeCall({ uri: '/2' }));
  h.call(encodeCall({ uri: '/3' }));
  h.call(new Uint8Array([1, 2, 3]));
  const seen = h.take();
  assert.equal(seen.length, 2);
  assert.ok('call' in seen[0] && 'call' in seen[1]);
  assert.equal(decodeResponse(seen[0].call).statusCode, 503);
  assert.equal(seen[0].index, 2);
  assert.equal(seen[1].call.length, 0);
  // Two saved requests, no saved replies.
  const saved = h.shutdown();
  assert.equal(saved[0], 2);
  assert.equal(saved.at(-1), 0);
});
