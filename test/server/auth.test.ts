// End-to-end: bearer tokens as Gate checks them (auth.md §2–§11), access
// policies (public with or without anonymous calls, ssh authorized_keys),
// and local mode on a Unix socket.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer } from '../../src/server/server.ts';
import { Client, Principal, request, sha256, startTestServer, testCacheDir, wasm, type TestServer } from './helpers.ts';

const now = () => Math.floor(Date.now() / 1000);
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('gate-server token checks', () => {
  let ts: TestServer;
  const alice = new Principal();
  const mallory = new Principal();
  const listPath = '/gate-0/instance/';

  before(async () => {
    ts = await startTestServer();
  });
  after(() => ts.close());

  const list = (authorization?: string | string[]) =>
    request(ts.url + listPath, { method: 'POST', headers: authorization === undefined ? {} : { Authorization: authorization } });

  it('accepts a signed token and rejects a missing one', async () => {
    assert.equal((await list(alice.bearer(ts.audience))).status, 200);
    const r = await list();
    assert.equal(r.status, 401);
    assert.equal(r.text, 'missing authentication credentials\n');
    assert.equal(r.headers['www-authenticate'], `Bearer realm="${ts.audience}"`);
  });

  it('rejects expired and too-far-future tokens', async () => {
    const expired = await list(`Bearer ${alice.token({ exp: now() - 10, aud: [ts.audience] })}`);
    assert.equal(expired.status, 401);
    assert.equal(expired.text, 'token has expired\n');
    assert.equal(expired.headers['www-authenticate'], `Bearer realm="${ts.audience}" error="invalid_token" error_description="token has expired"`);
    const noExp = await list(`Bearer ${alice.token({ aud: [ts.audience] })}`);
    assert.equal(noExp.text, 'token has expired\n');
    const future = await list(`Bearer ${alice.token({ exp: now() + 3600, aud: [ts.audience] })}`);
    assert.equal(future.text, 'token expiration is too far in the future\n');
    assert.equal((await list(`Bearer ${alice.token({ exp: now() + 800 })}`)).status, 200);
  });

  it('rejects forged signatures and wrong audiences', async () => {
    const good = alice.token({ exp: now() + 60, aud: [ts.audience] });
    const [head, claims] = good.split('.');
    const forgedSig = mallory.token({ exp: now() + 60, aud: [ts.audience] }).split('.')[2];
    const forged = await list(`Bearer ${head}.${claims}.${forgedSig}`);
    assert.equal(forged.status, 401);
    assert.equal(forged.text, 'invalid_token\n');
    // Claims changed after signing.
    const altered = `${head}.${b64url({ exp: now() + 61, aud: [ts.audience] })}.${good.split('.')[2]}`;
    assert.equal((await list(`Bearer ${altered}`)).text, 'invalid_token\n');
    const aud = await list(`Bearer ${alice.token({ exp: now() + 60, aud: ['https://elsewhere.example/gate-0/'] })}`);
    assert.equal(aud.text, 'invalid_token\n');
    const audString = await list(`Bearer ${alice.token({ exp: now() + 60, aud: ts.audience })}`);
    assert.equal(audString.text, 'invalid_token\n');
  });

  it('rejects malformed credentials', async () => {
    assert.equal((await list('Basic abc')).text, 'invalid_request\n');
    assert.equal((await list('Bearer abc')).text, 'invalid_token\n');
    assert.equal((await list('Bearer a.b.c')).text, 'invalid_token\n');
    const two = await list([alice.bearer(ts.audience), alice.bearer(ts.audience)]);
    assert.equal(two.status, 401);
    assert.equal(two.text, 'multiple Authorization headers\n');
    const none = `${b64url({ alg: 'none' })}.${b64url({ exp: now() + 60 })}.`;
    assert.equal((await list(`Bearer ${none}`)).text, 'invalid_token\n');
    const shortKey = alice.token({ exp: now() + 60 }, { alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: 'abc' } });
    const r = await list(`Bearer ${shortKey}`);
    assert.equal(r.text, 'encoded principal key has wrong length\n');
    const noJwk = alice.token({ exp: now() + 60 }, { alg: 'EdDSA' });
    assert.equal((await list(`Bearer ${noJwk}`)).text, 'invalid_token\n');
    const scope = await list(alice.bearer(ts.audience, { scope: 'a b c d e f g h i j k' }));
    assert.equal(scope.text, 'scope has too many tokens\n');
  });

  it('accepts a nonce once', async () => {
    const token = alice.bearer(ts.audience, { nonce: 'n-1' });
    assert.equal((await list(token)).status, 200);
    const again = await list(token);
    assert.equal(again.status, 401);
    assert.equal(again.text, 'token has already been used\n');
    assert.equal((await list(alice.bearer(ts.audience, { nonce: 'n-1' }))).status, 401);
    // Nonces are per key.
    assert.equal((await list(mallory.bearer(ts.audience, { nonce: 'n-1' }))).status, 200);
  });

  it('verifies a present token even where credentials are optional', async () => {
    const hello = wasm('examples/hello.wasm');
    const r = await request(`${ts.url}/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/wasm', Authorization: `Bearer ${alice.token({ exp: now() - 1 })}` },
      body: hello,
    });
    assert.equal(r.status, 401);
  });
});

describe('gate-server access policies', () => {
  it('can refuse anonymous calls', async () => {
    const ts = await startTestServer({ access: { anonymous: false } });
    try {
      const hello = wasm('examples/hello.wasm');
      const path = `/gate-0/module/sha256/${sha256(hello)}?action=call&function=greet`;
      const options = { headers: { 'Content-Type': 'application/wasm' }, body: hello };
      const anon = await new Client(ts).post(path, options);
      assert.equal(anon.status, 401);
      assert.equal(anon.text, 'missing authentication credentials\n');
      const signed = await new Client(ts, new Principal()).post(path, options);
      assert.equal(signed.status, 200);
      assert.equal(signed.text, 'hello, world\n');
    } finally {
      await ts.close();
    }
  });

  it('admits only authorized_keys principals with the ssh policy', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-keys-'));
    const alice = new Principal();
    const file = path.join(dir, 'authorized_keys');
    writeFileSync(file, `# comment\nssh-rsa AAAAB3Nza bogus\n${alice.authorizedKey()}\n`);
    const ts = await startTestServer({ access: { policy: 'ssh', ssh: { authorizedkeys: file } } });
    try {
      assert.equal((await new Client(ts, alice).post('/gate-0/instance/')).status, 200);
      const other = await new Client(ts, new Principal()).post('/gate-0/instance/');
      assert.equal(other.status, 403);
      assert.equal(other.text, 'permission denied\n');
      const hello = wasm('examples/hello.wasm');
      const anon = await new Client(ts).post(`/gate-0/module/sha256/${sha256(hello)}?action=call`, {
        headers: { 'Content-Type': 'application/wasm' },
        body: hello,
      });
      assert.equal(anon.status, 401);
    } finally {
      await ts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gate-server local mode on a Unix socket', () => {
  it('creates the socket with mode 0600 and accepts unsigned local tokens', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-local-'));
    const socketPath = path.join(dir, 'gate.sock');
    const server = await startServer({
      listen: { path: socketPath },
      dataDir: path.join(dir, 'data'),
      localUnsignedTokens: true,
      config: { runtime: { cachedir: testCacheDir } },
      log: new Logger('silent'),
    });
    try {
      assert.equal(server.url, socketPath);
      assert.equal(statSync(socketPath).mode & 0o777, 0o600);
      const unsigned = `Bearer ${b64url({ alg: 'none' })}.${b64url({})}.`;
      const call = (authorization: string) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request({ socketPath, path: '/gate-0/instance/', method: 'POST', headers: { Authorization: authorization } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.end();
        });
      assert.equal(await call(unsigned), 200);
      assert.equal(await call(`Bearer ${b64url({ alg: 'none' })}.${b64url({ nonce: 'x' })}.`), 401);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token test vector (auth.md §3.4, RFC 8037 key)', () => {
  it('verifies and yields the principal id of the key', async () => {
    const { Verifier } = await import('../../src/server/api/auth.ts');
    const token =
      'eyJhbGciOiJFZERTQSIsImp3ayI6eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IjExcVlBWUt4Q3JmVlNfN1R5V1FIT2c3aGN2UGFwaU1scndJYWFQY0hVUm8ifX0.eyJleHAiOjE3NjcyMjU2MDAsImF1ZCI6WyJodHRwczovL2V4YW1wbGUubmV0L2dhdGUtMC8iXSwic2NvcGUiOiJwcm9ncmFtOnN5c3RlbSJ9.3ZJkPFBAT7KoJJnXJwswI_j47X47AUcwLO4YFfZzc1drZ1Lo_iF22tZCWPzj03MYskbgs_SxufueGqp8AQrKDQ';
    const v = new Verifier({ audiences: ['https://example.net/gate-0/'], now: () => 1767225600 - 60 });
    const creds = v.verifyBearer(`Bearer ${token}`);
    assert.equal(creds.principal.id, 'ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
    assert.deepEqual(creds.scope, ['program:system']);
    const late = new Verifier({ audiences: ['https://example.net/gate-0/'], now: () => 1767225601 });
    assert.throws(() => late.verifyBearer(`Bearer ${token}`), /token has expired/);
    const tampered = token.slice(0, -2) + (token.endsWith('DQ') ? 'DA' : 'DQ');
    assert.throws(() => v.verifyBearer(`Bearer ${tampered}`), /invalid_token/);
  });

  it('remembers a token that passed until it expires, and never a tampered one', async () => {
    const { Verifier } = await import('../../src/server/api/auth.ts');
    const alice = new Principal();
    let now = 1_000_000;
    const v = new Verifier({ audiences: ['https://example.net/gate-0/'], now: () => now });
    const token = alice.token({ exp: now + 60, aud: ['https://example.net/gate-0/'] });
    const first = v.verifyToken(token);
    assert.equal(v.verifyToken(token), first);
    assert.throws(() => v.verifyToken(`${token.slice(0, -2)}${token.endsWith('AA') ? 'AQ' : 'AA'}`), /invalid_token/);
    now += 61;
    assert.throws(() => v.verifyToken(token), /token has expired/);
    assert.throws(() => v.verifyToken(token), /token has expired/);
  });
});
