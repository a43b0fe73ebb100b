// End-to-end: API document, routing and feature detection rules, Origin
// checks and CORS (api.md §1–§4).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Principal, request, startTestServer, type TestServer } from './helpers.ts';

describe('gate-server API routing', () => {
  let ts: TestServer;
  let alice: Client;

  before(async () => {
    ts = await startTestServer();
    alice = new Client(ts, new Principal());
  });
  after(() => ts.close());

  it('serves the API document with uuid and identity token', async () => {
    const r = await request(`${ts.url}/gate-0/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'public, max-age=3600');
    assert.equal(r.headers.server, 'gate');
    const doc = JSON.parse(r.text) as { uuid: string; jwt: string; features?: unknown };
    assert.match(doc.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(doc.features, undefined);
    const [head, claims, sig] = doc.jwt.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(head, 'base64url').toString()), { alg: 'none' });
    assert.deepEqual(JSON.parse(Buffer.from(claims, 'base64url').toString()), { iss: ts.audience, uuid: doc.uuid });
    assert.equal(sig, '');

    const f = await request(`${ts.url}/gate-0/?feature=scope`);
    assert.deepEqual((JSON.parse(f.text) as { features: unknown }).features, {});
    assert.equal((await request(`${ts.url}/gate-0/?feature=nope`)).status, 501);
    assert.equal((await request(`${ts.url}/gate-0/?other=1`)).status, 400);
    const notJson = await request(`${ts.url}/gate-0/`, { headers: { Accept: 'text/html' } });
    assert.equal(notJson.status, 200);
    assert.equal(notJson.text, '');
    assert.equal((await request(`${ts.url}/gate-0/?feature=scope`, { headers: { Accept: 'text/html' } })).status, 406);
  });

  it('answers HEAD like GET without a body, and OPTIONS with Allow', async () => {
    const head = await request(`${ts.url}/gate-0/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.byteLength, 0);
    const opts = await request(`${ts.url}/gate-0/module/sha256/`, { method: 'OPTIONS' });
    assert.equal(opts.status, 200);
    assert.equal(opts.headers.allow, 'GET, HEAD, OPTIONS, POST');
    const item = await request(`${ts.url}/gate-0/module/sha256/00`, { method: 'OPTIONS' });
    assert.equal(item.headers.allow, 'GET, HEAD, OPTIONS, POST, PUT');
    const inst = await request(`${ts.url}/gate-0/instance/`, { method: 'OPTIONS' });
    assert.equal(inst.headers.allow, 'GET, HEAD, OPTIONS');
  });

  it('lists module sources', async () => {
    const r = await request(`${ts.url}/gate-0/module/`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), ['sha256']);
    assert.equal(r.text, '[\n\t"sha256"\n]\n');
    assert.equal((await request(`${ts.url}/gate-0/module/`, { method: 'POST' })).status, 405);
  });

  it('answers existence checks with 200 and an empty body', async () => {
    for (const p of ['/gate-0/module/sha256/', '/gate-0/instance/', '/gate-0/instance/0b1c7a44-9d0e-4b7f-8a31-5cbe2f6d7e10']) {
      const r = await request(ts.url + p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body.byteLength, 0, p);
      assert.equal(r.headers['content-type'], undefined, p);
    }
  });

  it('answers 405 with Allow for unimplemented methods', async () => {
    const r = await request(`${ts.url}/gate-0/instance/x`, { method: 'PUT' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD, OPTIONS, POST');
    assert.equal(r.text, 'Method Not Allowed\n');
    const list = await request(`${ts.url}/gate-0/module/sha256/`, { method: 'PUT' });
    assert.equal(list.status, 405);
    assert.equal(list.text, '');
    assert.equal((await request(`${ts.url}/gate-0/`, { method: 'POST' })).status, 405);
  });

  it('answers 501 for unknown actions, with a cache header', async () => {
    const r = await alice.post('/gate-0/instance/0b1c7a44-9d0e-4b7f-8a31-5cbe2f6d7e10?action=fly');
    assert.equal(r.status, 501);
    assert.equal(r.text, 'unsupported action\n');
    assert.equal(r.headers['cache-control'], 'public, max-age=3600');
    const m = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=frobnicate`);
    assert.equal(m.status, 501);
    const combo = await alice.post('/gate-0/instance/0b1c7a44-9d0e-4b7f-8a31-5cbe2f6d7e10?action=kill&action=suspend');
    assert.equal(combo.status, 501);
  });

  it('answers 404 for unknown paths and sources, and redirects directories', async () => {
    const r = await request(`${ts.url}/nothing`);
    assert.equal(r.status, 404);
    assert.equal(r.text, '404 page not found\n');
    assert.equal((await request(`${ts.url}/gate-0/module/nosuch/x`)).status, 404);
    for (const [from, to] of [
      ['/gate-0', '/gate-0/'],
      ['/gate-0/module', '/gate-0/module/'],
      ['/gate-0/module/sha256', '/gate-0/module/sha256/'],
      ['/gate-0/instance', '/gate-0/instance/'],
      ['/gate-0//module/', '/gate-0/module/'],
    ]) {
      const red = await request(ts.url + from);
      assert.equal(red.status, 301, from);
      assert.equal(red.headers.location, to, from);
    }
  });

  it('validates query strings', async () => {
    const id = '0b1c7a44-9d0e-4b7f-8a31-5cbe2f6d7e10';
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=%zz`)).text, 'query string decode error\n');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=wait;x`)).status, 400);
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=wait&bogus=1`)).text, 'unexpected query parameters\n');
    const fn = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=launch&function=bad%20name`);
    assert.equal(fn.status, 400);
    assert.equal(fn.text, 'invalid function name: "bad name"\n');
    const bidi = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=launch&function=ok%E2%80%AEtxt.exe`);
    assert.equal(bidi.text, 'invalid function name: "ok\\u202etxt.exe"\n');
    const dup = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=launch&function=a&function=b`);
    assert.equal(dup.text, 'duplicate query parameter\n');
    const log = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=launch&log=x`);
    assert.equal(log.status, 501);
    assert.equal(log.text, 'unsupported log argument: "x"\n');
    const missing = await request(`${ts.url}/gate-0/instance/${id}?x=1`);
    assert.equal(missing.text, 'missing query parameter: action\n');
  });

  it('validates module keys and instance ids in paths (404) and parameters (400)', async () => {
    const upper = await alice.post(`/gate-0/module/sha256/${'A'.repeat(64)}`);
    assert.equal(upper.status, 404);
    assert.equal(upper.text, 'module hash must use lower-case hex encoding\n');
    assert.equal((await alice.post('/gate-0/module/sha256/xyz')).text, 'module hash must be hex-encoded\n');
    const cases: [string, string][] = [
      ['nonsense', 'instance id must be a UUID'],
      ['0b1c7a44-9d0e-1b7f-8a31-5cbe2f6d7e10', 'instance UUID version must be 4'],
      ['0b1c7a44-9d0e-4b7f-0a31-5cbe2f6d7e10', 'instance UUID variant must be RFC 4122'],
      ['0B1C7A44-9D0E-4B7F-8A31-5CBE2F6D7E10', 'instance UUID must use lower-case hex encoding'],
      ['0b1c7a449d0e4b7f8a315cbe2f6d7e10', 'instance UUID must use lower-case hex encoding'],
    ];
    for (const [id, message] of cases) {
      const r = await alice.post(`/gate-0/instance/${id}`);
      assert.equal(r.status, 404, id);
      assert.equal(r.text, `${message}\n`, id);
    }
    const param = await alice.post(`/gate-0/module/sha256/${'0'.repeat(64)}?action=launch&instance=nonsense`);
    assert.equal(param.status, 400);
    assert.equal(param.text, 'instance id must be a UUID\n');
  });

  it('sends error text only when text is acceptable', async () => {
    const r = await request(`${ts.url}/gate-0/instance/nonsense`, { method: 'POST', headers: { Accept: 'application/json' } });
    assert.equal(r.status, 404);
    assert.equal(r.text, '');
  });

  it("allows only the server's own origin by default, with CORS headers (Gate's mustBeAllowedOrigin)", async () => {
    const other = await request(`${ts.url}/gate-0/module/sha256/00`, { method: 'OPTIONS', headers: { Origin: 'https://example.net' } });
    assert.equal(other.status, 403);
    assert.equal(other.text, '');
    const own = new URL(ts.url).origin;
    const r = await request(`${ts.url}/gate-0/module/sha256/00`, { method: 'OPTIONS', headers: { Origin: own } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], own);
    assert.equal(r.headers['access-control-allow-methods'], 'GET, HEAD, OPTIONS, POST, PUT');
    assert.equal(r.headers['access-control-allow-headers'], 'Authorization, Content-Type');
    assert.equal(r.headers['access-control-expose-headers'], 'Location, Gate-Instance, Gate-Status');
    assert.equal(r.headers['access-control-max-age'], '86400');
  });

  it('serves Prometheus metrics', async () => {
    const r = await request(`${ts.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.text, /^# TYPE gate_http_requests_total counter$/m);
    assert.match(r.text, /^gate_instances\{state="RUNNING"\} \d+$/m);
  });
});

describe('gate-server Origin allow-list', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ http: { origins: ['https://good.example'] } });
  });
  after(() => ts.close());

  it('refuses other origins with an empty 403, even for unknown paths', async () => {
    const bad = await request(`${ts.url}/gate-0/`, { headers: { Origin: 'https://evil.example' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.text, '');
    assert.equal((await request(`${ts.url}/nothing`, { headers: { Origin: 'https://evil.example' } })).status, 403);
    const good = await request(`${ts.url}/gate-0/`, { headers: { Origin: 'https://good.example' } });
    assert.equal(good.status, 200);
    assert.equal(good.headers['access-control-allow-origin'], 'https://good.example');
    assert.equal((await request(`${ts.url}/gate-0/`)).status, 200);
  });
});
