// The web console's files as gate-server serves them: the page, its
// stylesheet and the two scripts esbuild bundles from the sources (the page
// and the browser host's worker), with a content security policy, ETags,
// Gate's answer to foreign origins, and a switch to turn the console off.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, startTestServer, type TestServer } from './helpers.ts';

describe('gate-server /console/', () => {
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer();
  });

  after(async () => {
    await ts.close();
  });

  it('serves the page, its stylesheet and its scripts', async () => {
    const page = await request(`${ts.url}/console/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    for (const testid of ['module-file', 'function', 'run-browser', 'run-server', 'output', 'input', 'instances']) {
      assert.match(page.text, new RegExp(`data-testid="${testid}"`), testid);
    }
    const csp = page.headers['content-security-policy'] as string;
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(csp, /connect-src 'self'/);

    const css = await request(`${ts.url}/console/console.css`);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    for (const script of ['console.js', 'worker.js']) {
      const js = await request(`${ts.url}/console/${script}`);
      assert.equal(js.status, 200, script);
      assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
      // A bundle of browser code: nothing left to load from Node or from elsewhere.
      assert.doesNotMatch(js.text, /\bfrom\s*["'](node:|[a-z@])/, `${script} imports a module`);
      assert.doesNotMatch(js.text, /require\(["']node:/);
      assert.match(js.text, new RegExp(`sourceMappingURL=${script}\\.map`));
      assert.equal((await request(`${ts.url}/console/${script}.map`)).status, 200);
    }
    // The worker carries the runtime: the rewrite's version string is in it.
    assert.match((await request(`${ts.url}/console/worker.js`)).text, /gate-ts-prepare-/);
  });

  it('redirects /console, answers HEAD, 304 for a known ETag, 404 and 405', async () => {
    const r = await request(`${ts.url}/console`);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/console/');

    const head = await request(`${ts.url}/console/worker.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.byteLength, 0);
    assert.ok(Number(head.headers['content-length']) > 10000);

    const etag = head.headers.etag as string;
    const again = await request(`${ts.url}/console/worker.js`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);

    assert.equal((await request(`${ts.url}/console/nothing.js`)).status, 404);
    const post = await request(`${ts.url}/console/`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  it("allows the server's own origin and refuses foreign ones", async () => {
    const own = await request(`${ts.url}/console/`, { headers: { Origin: ts.url } });
    assert.equal(own.status, 200);
    const foreign = await request(`${ts.url}/console/`, { headers: { Origin: 'http://example.net' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.byteLength, 0);
    const api = await request(`${ts.url}/gate-0/`, { headers: { Origin: 'http://example.net' } });
    assert.equal(api.status, 403);
  });

  it('is off with http.console = false', async () => {
    const off = await startTestServer({ http: { console: false } });
    try {
      assert.equal((await request(`${off.url}/console/`)).status, 404);
    } finally {
      await off.close();
    }
  });
});
