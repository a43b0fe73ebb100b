// gate-server's command line and configuration file, and TLS.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { listenAddress, translateArgs } from '../../src/server/config/args.ts';
import { parseArgs } from '../../src/server/config/config.ts';
import { root } from '../helpers.ts';
import { request, startTestServer } from './helpers.ts';
import { GATE_SERVER, makeHome, startServer as startCliServer } from '../cli/helpers.ts';

describe('gate-server configuration', () => {
  it('reads a TOML file and flags in order', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-config-'));
    try {
      const file = path.join(dir, 'server.toml');
      writeFileSync(
        file,
        [
          '[access]',
          'policy = "ssh"',
          'anonymous = false',
          '[principal]',
          'maxmodules = 5',
          'timelimit = 30',
          '[http]',
          'origins = ["https://app.example"]',
          'tls.certfile = "/etc/cert.pem"',
          '[[source.http]]',
          'name = "files"',
          'addr = "https://files.example"',
        ].join('\n'),
      );
      const { config } = parseArgs(translateArgs(['--config', file, '--listen', 'unix:/run/gate.sock', '--data-dir', '/srv/gate', '-o', 'principal.maxprocs=3']), {});
      assert.equal(config.access.policy, 'ssh');
      assert.equal(config.access.anonymous, false);
      assert.equal(config.principal.maxmodules, 5);
      assert.equal(config.principal.maxprocs, 3);
      assert.equal(config.principal.timelimit, 30);
      assert.deepEqual(config.http.origins, ['https://app.example']);
      assert.equal(config.http.tls.certfile, '/etc/cert.pem');
      assert.deepEqual(config.source.http, [{ name: 'files', addr: 'https://files.example' }]);
      assert.equal(config.http.addr, 'unix:/run/gate.sock');
      assert.equal(config.server.datadir, '/srv/gate');
      assert.throws(() => parseArgs(['-o', 'principal.nosuch=1'], {}), /unknown configuration key: principal.nosuch/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads TOML with smol-toml: inline tables, dates, inf are TOML; wrong types name the key and file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-config-'));
    const file = path.join(dir, 'server.toml');
    const load = (text: string) => {
      writeFileSync(file, text);
      return parseArgs(['-f', file], {}).config;
    };
    try {
      // Valid TOML the old reader refused.
      assert.deepEqual(load('http = { addr = "127.0.0.1:1", tls = { certfile = "/c" } }').http.tls.certfile, '/c');
      assert.equal(load('service.access."example.net/svc" = { principals = ["ed25519:x"] }').service.access['example.net/svc'].principals?.[0], 'ed25519:x');
      assert.equal(load('[principal]\nmaxprocs = 0x10').principal.maxprocs, 16);
      assert.equal(load('[principal]\nmaxprocs = 1_000').principal.maxprocs, 1000);
      // Invalid TOML the old reader accepted: an error with the line.
      assert.throws(() => load('[principal]\nmaxprocs = +0x10'), (e: Error) => e.message.startsWith(`${file}: invalid TOML: line 2`));
      assert.throws(() => load('a = 1\na = 2'), /invalid TOML/);
      // Valid TOML of the wrong type for a key.
      assert.throws(() => load('[principal]\ntimelimit = inf'), new RegExp(`: ${file}: principal.timelimit: must be a finite number, not Infinity$`));
      assert.throws(() => load('server.uuid = 1979-05-27'), /server\.uuid: must be a string, not the date 1979-05-27/);
      assert.throws(() => load('[access]\nanonymous = 1'), /access\.anonymous: must be true or false/);
      assert.throws(() => load('[principal]\nmaxprocs = -1'), /principal\.maxprocs: must be at least 0/);
      assert.throws(() => load('[principal]\ntimeresolution = "10 parsecs"'), /principal\.timeresolution: invalid duration/);
      assert.throws(() => load('[nosuch]\nkey = 1'), new RegExp(`: ${file}: unknown configuration key: nosuch.key$`));
      // Options use the same rules: Gate's boolean words, TOML numbers, the key named.
      const { config } = parseArgs(['-o', 'access.anonymous=no', '-o', 'principal.maxprocs=0x20', '-o', 'http.origins=["https://a"]', '-o', 'source.http.0.name=x', '-o', 'source.http.0.addr=https://x'], {});
      assert.equal(config.access.anonymous, false);
      assert.equal(config.principal.maxprocs, 32);
      assert.deepEqual(config.http.origins, ['https://a']);
      assert.deepEqual(config.source.http, [{ name: 'x', addr: 'https://x' }]);
      assert.throws(() => parseArgs(['-o', 'access.anonymous=1'], {}), /^ConfigError: -o: access\.anonymous: must be true or false/);
      assert.throws(() => parseArgs(['-o', 'principal.maxprocs=many'], {}), /-o: principal\.maxprocs: must be a whole number, not "many"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gate-daemon reads the same keys from daemon.toml, with its own defaults underneath', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-config-'));
    try {
      writeFileSync(path.join(dir, 'daemon.toml'), '[service.random]\nenabled = false\n');
      const { config } = parseArgs(['-o', 'principal.maxprocs=5'], { defaultFiles: [path.join(dir, 'daemon.toml')], overrides: { 'principal.maxprocs': 1024, 'principal.maxmodules': 100000 } });
      assert.equal(config.service.random.enabled, false);
      assert.equal(config.principal.maxprocs, 5);
      assert.equal(config.principal.maxmodules, 100000);
      // -F forgets the files, not the program's own defaults.
      writeFileSync(path.join(dir, 'other.toml'), '');
      const reset = parseArgs(['-F', path.join(dir, 'other.toml')], { defaultFiles: [path.join(dir, 'daemon.toml')], overrides: { 'principal.maxmodules': 100000 } }).config;
      assert.equal(reset.service.random.enabled, true);
      assert.equal(reset.principal.maxmodules, 100000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses listen addresses', () => {
    assert.deepEqual(listenAddress('127.0.0.1:6473'), { host: '127.0.0.1', port: 6473 });
    assert.deepEqual(listenAddress('[::1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(listenAddress(':8080'), { host: '', port: 8080 });
    assert.deepEqual(listenAddress('unix:/tmp/g.sock'), { path: '/tmp/g.sock' });
    assert.deepEqual(listenAddress('/tmp/g.sock'), { path: '/tmp/g.sock' });
    assert.throws(() => listenAddress('nonsense'), /host:port/);
  });

  it('defaults to 127.0.0.1:6473 and a data dir in the state directory', () => {
    const { config } = parseArgs([], {});
    assert.equal(config.http.addr, '127.0.0.1:6473');
    const state = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
    assert.equal(config.server.datadir, path.join(state, 'gate'));
  });

  it('prints help and refuses unknown flags', () => {
    const help = execFileSync(process.execPath, [path.join(root, 'bin/gate-server.js'), '--help', '-F', '/dev/null'], { encoding: 'utf8' });
    assert.match(help, /--listen ADDR/);
    assert.match(help, /principal\.maxmodules = 64/);
    const bad = spawnSync(process.execPath, [path.join(root, 'bin/gate-server.js'), '--bogus'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown flag: --bogus/);
  });
});

describe('gate-server TLS', () => {
  it('serves https with the configured certificate', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const ts = await startTestServer({ http: { tls: { certfile: cert, keyfile: key } } });
    try {
      assert.match(ts.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${ts.url}/gate-0/`, { rejectUnauthorized: false }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      const jwt = (JSON.parse(body) as { jwt: string }).jwt;
      const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { iss: string };
      assert.equal(claims.iss, `${ts.url}/gate-0/`);
    } finally {
      await ts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gate-server identity token', () => {
  it('signs the API document token with server.identityfile (OpenSSH Ed25519 key)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-identity-'));
    const keyFile = path.join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile], { stdio: 'ignore' });
    const ts = await startTestServer({ server: { identityfile: keyFile } });
    try {
      const doc = JSON.parse((await request(`${ts.url}/gate-0/`)).text) as { uuid: string; jwt: string };
      const [head, claims, sig] = doc.jwt.split('.');
      const header = JSON.parse(Buffer.from(head, 'base64url').toString()) as { alg: string; jwk: { kty: string; crv: string; x: string } };
      assert.equal(header.alg, 'EdDSA');
      const pub = readFileSync(`${keyFile}.pub`, 'utf8').split(' ')[1];
      assert.equal(Buffer.from(header.jwk.x, 'base64url').toString('base64'), Buffer.from(pub, 'base64').subarray(19).toString('base64'));
      const key = createPublicKey({ key: header.jwk, format: 'jwk' });
      assert.ok(verify(null, Buffer.from(`${head}.${claims}`), key, Buffer.from(sig, 'base64url')));
      const c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as { iss: string; uuid: string; exp: number };
      assert.equal(c.iss, ts.audience);
      assert.equal(c.uuid, doc.uuid);
      assert.ok(c.exp > Date.now() / 1000 + 89 * 86400);
    } finally {
      await ts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gate-server data directory lock', () => {
  it('a second server on the same data directory exits, naming the holder', async () => {
    const home = makeHome();
    const first = await startCliServer(home, 'shared');
    try {
      const second = spawnSync(process.execPath, [GATE_SERVER, '-F', '/dev/null', '--listen', '127.0.0.1:0', '--data-dir', path.join(home.dir, 'shared')], { env: home.env, encoding: 'utf8' });
      assert.equal(second.status, 1);
      assert.equal(second.stderr, `gate-server: data directory ${path.join(home.dir, 'shared')} is in use by process ${first.child.pid} (another gate-server or gate-daemon); stop it or choose another --data-dir\n`);
    } finally {
      await first.stop();
      await home.cleanup();
    }
  });
});
