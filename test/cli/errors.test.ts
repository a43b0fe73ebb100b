// Bad input gets one clear line on stderr and a non-zero exit status:
// usage errors 2, everything else 1. None of these needs a running server.

import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { example, gate, makeHome, openSSHKey, type TestHome } from './helpers.ts';

/** A loopback port that refuses connections: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function oneLine(stderr: string, pattern: RegExp): void {
  assert.equal(stderr.split('\n').length, 2, `one line expected: ${JSON.stringify(stderr)}`);
  assert.match(stderr, pattern);
}

describe('gate error messages', () => {
  let home: TestHome;
  let nowhere: string;
  before(async () => {
    home = makeHome();
    nowhere = `http://127.0.0.1:${await closedPort()}`;
  });
  after(async () => {
    await home.cleanup();
  });

  it('unknown command: usage error', async () => {
    const r = await gate(home, ['frobnicate']);
    assert.equal(r.code, 2);
    oneLine(r.stderr, /^gate: unknown command 'frobnicate'/);
  });

  it('unknown option, missing argument, bad configuration key: usage errors', async () => {
    const option = await gate(home, ['--frob', 'instances']);
    assert.equal(option.code, 2);
    oneLine(option.stderr, /^gate: unknown option: --frob/);
    const missing = await gate(home, [nowhere, 'call']);
    assert.equal(missing.code, 2);
    oneLine(missing.stderr, /^gate: missing required argument 'module'/);
    const key = await gate(home, ['-o', 'nosuch=1', nowhere, 'instances']);
    assert.equal(key.code, 2);
    oneLine(key.stderr, /^gate: -o: unknown configuration key: nosuch$/m);
  });

  it('missing module file', async () => {
    const file = path.join(home.dir, 'missing.wasm');
    for (const args of [[nowhere, 'call', file], ['call', '--in-process', file], [nowhere, 'import', file]]) {
      const r = await gate(home, args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, `gate: ${file}: no such file\n`);
    }
  });

  it('unreachable server', async () => {
    const r = await gate(home, [nowhere, 'instances']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `gate: cannot connect to ${nowhere}: connection refused\n`);
  });

  it('not an instance id', async () => {
    const r = await gate(home, [nowhere, 'status', 'xyz']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'gate: not an instance id: xyz: instance id must be a UUID\n');
    const v1 = await gate(home, [nowhere, 'status', '6ba7b810-9dad-11d1-80b4-00c04fd430c8']);
    assert.equal(v1.stderr, 'gate: not an instance id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8: instance UUID version must be 4\n');
    const upper = await gate(home, [nowhere, 'status', '6BA7B810-9DAD-41D1-80B4-00C04FD430C8']);
    assert.equal(upper.stderr, 'gate: not an instance id: 6BA7B810-9DAD-41D1-80B4-00C04FD430C8: instance UUID must use lower-case hex encoding\n');
  });

  it('bad keys: missing, encrypted, not Ed25519, not OpenSSH', async () => {
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['absent', undefined, /: no such key file \(create one with "ssh-keygen -t ed25519"/],
      ['encrypted', openSSHKey({ encrypted: true }), /: the key is encrypted with a passphrase \(aes256-ctr\); gate needs an unencrypted Ed25519 key/],
      ['rsa', openSSHKey({ type: 'ssh-rsa' }), /: not an Ed25519 private key \(it is ssh-rsa;/],
      ['pem', '-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n', /: not an Ed25519 private key in OpenSSH format/],
      ['garbage', 'hello\n', /: not an OpenSSH private key$/m],
    ];
    for (const [name, text, pattern] of cases) {
      const file = path.join(home.dir, `key-${name}`);
      if (text !== undefined) writeFileSync(file, text, { mode: 0o600 });
      const r = await gate(home, ['-o', `identityfile=${file}`, nowhere, 'instances']);
      assert.equal(r.code, 1, name);
      oneLine(r.stderr, new RegExp(`^gate: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${pattern.source}`, 'm'));
    }
  });

  it('reads client.toml, then client.d/*.toml, then -F/-o; ${HOME} expands', async () => {
    const config = path.join(home.dir, 'config', 'gate');
    mkdirSync(path.join(config, 'client.d'), { recursive: true });
    mkdirSync(path.join(home.dir, 'keys'));
    writeFileSync(path.join(home.dir, 'keys', 'rsa'), openSSHKey({ type: 'ssh-rsa' }));
    writeFileSync(path.join(home.dir, 'keys', 'locked'), openSSHKey({ encrypted: true }));
    try {
      writeFileSync(path.join(config, 'client.toml'), 'identityfile = "${HOME}/keys/rsa"\n[repl]\nhistorylimit = 10\n');
      const first = await gate(home, [nowhere, 'instances']);
      oneLine(first.stderr, new RegExp(`^gate: ${home.dir}/keys/rsa: not an Ed25519 private key`));
      writeFileSync(path.join(config, 'client.d', '10-locked.toml'), 'identityfile = "${HOME}/keys/locked"\n');
      const second = await gate(home, [nowhere, 'instances']);
      oneLine(second.stderr, new RegExp(`^gate: ${home.dir}/keys/locked: the key is encrypted`));
      // -F forgets the default files: back to ~/.ssh/id_ed25519, which works, so the server's absence shows.
      const reset = await gate(home, ['-F', '/dev/null', nowhere, 'instances']);
      assert.equal(reset.stderr, `gate: cannot connect to ${nowhere}: connection refused\n`);
      const option = await gate(home, ['-o', `identityfile=${home.keyFile}`, nowhere, 'instances']);
      assert.equal(option.stderr, `gate: cannot connect to ${nowhere}: connection refused\n`);
      writeFileSync(path.join(config, 'client.toml'), 'nosuchkey = 1\n');
      const bad = await gate(home, [nowhere, 'instances']);
      assert.equal(bad.code, 2);
      oneLine(bad.stderr, /client\.toml: unknown configuration key: nosuchkey/);
    } finally {
      rmSync(config, { recursive: true, force: true });
    }
  });

  it('an empty identity file sends unsigned tokens only to this machine', async () => {
    const file = path.join(home.dir, 'empty-key');
    writeFileSync(file, '');
    const r = await gate(home, ['-o', `identityfile=${file}`, 'https://gate.example.net', 'instances']);
    assert.equal(r.code, 1);
    oneLine(r.stderr, /is empty: unsigned tokens are only sent to http:\/\/ addresses on this machine/);
  });

  it('a program that fails: its status on stderr, exit status 1', async () => {
    const r = await gate(home, ['call', '--in-process', example('exit1.wasm'), 'exit1']);
    assert.equal(r.code, 1);
  });
});
