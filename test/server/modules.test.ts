// End-to-end: known modules (upload+pin, download, info, pin, unpin, list,
// tags, bad uploads) and the call action over HTTP (api.md §5–§6).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client, Principal, readUntil, request, sha256, startTestServer, wasm, type TestServer } from './helpers.ts';

describe('gate-server modules', () => {
  let ts: TestServer;
  let alice: Client;
  let bob: Client;
  let anon: Client;
  const hello = wasm('examples/hello.wasm');
  const helloHash = sha256(hello);

  before(async () => {
    ts = await startTestServer({ principal: { maxmodulesize: 1024 * 1024 } });
    alice = new Client(ts, new Principal());
    bob = new Client(ts, new Principal());
    anon = new Client(ts);
  });
  after(() => ts.close());

  it('uploads and pins with PUT, then downloads the exact bytes', async () => {
    const put = await alice.request(`/gate-0/module/sha256/${helloHash}?action=pin&module-tag=hello`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello,
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.location, undefined);
    const get = await alice.request(`/gate-0/module/sha256/${helloHash}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-type'], 'application/wasm');
    assert.equal(get.headers['content-length'], String(hello.byteLength));
    assert.deepEqual(new Uint8Array(get.body), hello);
    const info = await alice.post(`/gate-0/module/sha256/${helloHash}`);
    assert.deepEqual(JSON.parse(info.text), { module: helloHash, tags: ['hello'] });
  });

  it('keeps modules per principal: others see 404 until they pin', async () => {
    assert.equal((await bob.request(`/gate-0/module/sha256/${helloHash}`)).status, 404);
    const info = await bob.post(`/gate-0/module/sha256/${helloHash}`);
    assert.equal(info.status, 404);
    assert.equal(info.text, 'module not found\n');
    assert.equal((await bob.post(`/gate-0/module/sha256/${helloHash}?action=pin`)).status, 404);
    assert.deepEqual(JSON.parse((await bob.post('/gate-0/module/sha256/')).text), {});
  });

  it('lists, re-tags, pins and unpins', async () => {
    const echo = await alice.upload(wasm('examples/echo.wasm'));
    const list = JSON.parse((await alice.post('/gate-0/module/sha256/')).text) as { modules: { module: string }[] };
    assert.deepEqual(list.modules.map((m) => m.module).sort(), [echo, helloHash].sort());
    assert.equal((await alice.post(`/gate-0/module/sha256/${helloHash}?action=pin&module-tag=v2`)).status, 200);
    assert.deepEqual(JSON.parse((await alice.post(`/gate-0/module/sha256/${helloHash}`)).text).tags, ['v2']);
    assert.equal((await alice.post(`/gate-0/module/sha256/${helloHash}?action=pin`)).status, 200);
    assert.deepEqual(JSON.parse((await alice.post(`/gate-0/module/sha256/${helloHash}`)).text).tags, ['v2']);
    assert.equal((await alice.post(`/gate-0/module/sha256/${echo}?action=unpin`)).status, 200);
    assert.equal((await alice.post(`/gate-0/module/sha256/${echo}?action=unpin`)).status, 404);
    assert.equal((await alice.post(`/gate-0/module/sha256/${echo}`)).status, 404);
  });

  it('refuses a module whose hash does not match', async () => {
    const r = await alice.request(`/gate-0/module/sha256/${'ab'.repeat(32)}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: wasm('examples/exit1.wasm'),
    });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'module hash does not match content\n');
  });

  it("refuses garbage modules with Gate's message, invalid wasm with the validator's", async () => {
    const garbage = new TextEncoder().encode('this is not wasm at all');
    const r = await alice.request(`/gate-0/module/sha256/${sha256(garbage)}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: garbage,
    });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'not a WebAssembly module\n');
    const empty = await alice.request(`/gate-0/module/sha256/${sha256(new Uint8Array(0))}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: new Uint8Array(0),
    });
    assert.equal(empty.status, 400);
    assert.equal(empty.text, 'not a WebAssembly module\n');
    const imports = wasm('wat/bad_import.wasm');
    const bad = await alice.request(`/gate-0/module/sha256/${sha256(imports)}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: imports,
    });
    assert.equal(bad.status, 400);
  });

  it('refuses oversize modules before reading them, and uploads without length', async () => {
    const big = new Uint8Array(1024 * 1024 + 1);
    const r = await alice.request(`/gate-0/module/sha256/${sha256(big)}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: big,
    });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'module size limit exceeded\n');
    const chunked = await alice.request(`/gate-0/module/sha256/${helloHash}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello,
      chunked: true,
    });
    assert.equal(chunked.status, 411);
    // A stored module and an unknown one get the same answer: the server does not tell what it has.
    const known = await alice.request(`/gate-0/module/sha256/${helloHash}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello.subarray(0, 100),
    });
    const unknown = await alice.request(`/gate-0/module/sha256/${'0'.repeat(64)}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello.subarray(0, 100),
    });
    assert.equal(known.status, 400);
    assert.equal(known.text, 'module hash does not match content\n');
    assert.equal(unknown.status, known.status);
    assert.equal(unknown.text, known.text);
  });

  it('checks content type, body and credentials in order', async () => {
    const noType = await alice.request(`/gate-0/module/sha256/${helloHash}?action=pin`, { method: 'PUT', body: hello });
    assert.equal(noType.status, 415);
    const noPin = await alice.request(`/gate-0/module/sha256/${helloHash}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello,
    });
    assert.equal(noPin.status, 501);
    const anonymous = await anon.request(`/gate-0/module/sha256/${helloHash}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: hello,
    });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.text, 'missing authentication credentials\n');
    assert.match(anonymous.headers['www-authenticate'] as string, /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/gate-0\/"$/);
    assert.equal((await alice.post(`/gate-0/module/sha256/${helloHash}`, { body: 'x' })).status, 413);
    assert.equal((await alice.post('/gate-0/module/sha256/', { headers: { 'Content-Type': 'text/plain' } })).status, 415);
    assert.equal((await alice.post('/gate-0/module/sha256/', { headers: { Accept: 'text/html' } })).status, 406);
    assert.equal((await alice.request(`/gate-0/module/sha256/${helloHash}`, { headers: { Accept: 'text/html' } })).status, 406);
  });

  it('calls an uploaded module anonymously: output, trailer, no Gate-Instance', async () => {
    const r = await anon.post(`/gate-0/module/sha256/${helloHash}?action=call&function=greet`, {
      headers: { 'Content-Type': 'application/wasm', Te: 'trailers' },
      body: hello,
    });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello, world\n');
    assert.equal(r.headers.trailer, 'Gate-Status');
    assert.equal(r.trailers['gate-status'], '{"state":"TERMINATED"}');
    assert.equal(r.headers['gate-instance'], undefined);
    assert.equal(r.headers['content-type'], undefined);
  });

  it('calls with pin: 201, Location and Gate-Instance', async () => {
    const exit1 = wasm('examples/exit1.wasm');
    const hash = sha256(exit1);
    const r = await alice.post(`/gate-0/module/sha256/${hash}?action=call&action=pin&function=exit1&module-tag=x`, {
      headers: { 'Content-Type': 'application/wasm', Te: 'trailers' },
      body: exit1,
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers.location, `/gate-0/module/sha256/${hash}`);
    assert.match(r.headers['gate-instance'] as string, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(r.trailers['gate-status'], '{"state":"TERMINATED","result":1}');
    // The call instance is transient: gone afterwards.
    assert.equal((await alice.post(`/gate-0/instance/${r.headers['gate-instance']}`)).status, 404);
    assert.equal((await anon.post(`/gate-0/module/sha256/${hash}?action=call&action=pin`, { headers: { 'Content-Type': 'application/wasm' }, body: exit1 })).status, 401);
  });

  it('calls an extant module with the request body streaming into the program', async () => {
    const echo = await alice.upload(wasm('examples/echo.wasm'));
    const r = await alice.post(`/gate-0/module/sha256/${echo}?action=call&function=echo`, { headers: { Te: 'trailers' }, body: 'ping pong\n' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ping pong\n');
    assert.equal(r.trailers['gate-status'], '{"state":"TERMINATED"}');
    assert.equal((await bob.post(`/gate-0/module/sha256/${echo}?action=call&function=echo`, { body: 'x' })).status, 404);
    assert.equal((await anon.post(`/gate-0/module/sha256/${echo}?action=call&function=echo`, { body: 'x' })).status, 401);
  });

  it('streams both ways in one request (full duplex)', async () => {
    const echo = sha256(wasm('examples/echo.wasm'));
    await alice.upload(wasm('examples/echo.wasm'));
    const url = `${ts.url}/gate-0/module/sha256/${echo}?action=call&function=echo`;
    const req = http.request(url, { method: 'POST', headers: { ...alice.auth(), Te: 'trailers' } });
    const response = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    req.write('first\n');
    const res = await response;
    assert.equal(res.statusCode, 200);
    assert.equal(await readUntil(res, /first\n/), 'first\n');
    req.write('second\n');
    assert.equal(await readUntil(res, /second\n/), 'second\n');
    req.end();
    await new Promise((resolve) => res.on('end', resolve));
    assert.equal(res.trailers['gate-status'], '{"state":"TERMINATED"}');
  });

  it('reports traps, bad entry functions and _start rules', async () => {
    const traps = wasm('examples/traps.wasm');
    const h = sha256(traps);
    const call = (fn: string) =>
      anon.post(`/gate-0/module/sha256/${h}?action=call&function=${fn}`, { headers: { 'Content-Type': 'application/wasm', Te: 'trailers' }, body: traps });
    const trap = await call('divide_by_zero');
    assert.equal(trap.status, 200);
    assert.equal(JSON.parse(trap.trailers['gate-status']!).cause, 'INTEGER_DIVIDE_BY_ZERO');
    const missing = await call('no_such_function');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'function not exported or it cannot be used as entry function\n');
  });

  it('runs a module without entry function to completion', async () => {
    const nop = wasm('wat/nop.wasm');
    const r = await anon.post(`/gate-0/module/sha256/${sha256(nop)}?action=call`, { headers: { 'Content-Type': 'application/wasm', Te: 'trailers' }, body: nop });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.trailers['gate-status'], '{"state":"TERMINATED"}');
  });

  it('websocket-only actions answer a plain GET with 400', async () => {
    const r = await alice.request(`/gate-0/module/sha256/${helloHash}?action=call`);
    assert.equal(r.status, 400);
    assert.equal(r.headers['sec-websocket-version'], '13');
    assert.equal((await request(`${ts.url}/gate-0/module/sha256/${helloHash}?action=pin`)).status, 501);
  });
});
