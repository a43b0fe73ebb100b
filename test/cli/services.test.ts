// The built-in services as programs meet them through each command that
// runs programs: gate-server (instances in its worker threads), gate-daemon
// (`gate call`) and `gate call --in-process`. The guest program
// guest/services/builtins.wasm discovers identity, random and scope, uses
// them and reports on its origin stream.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { root } from '../helpers.ts';
import { gate, makeHome, startServer, type ServerProcess, type TestHome } from './helpers.ts';

const BUILTINS = path.join(root, 'guest', 'services', 'builtins.wasm');
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';

/** The program's report: every built-in service found and used. */
function assertReport(stdout: string, principal: string | RegExp): void {
  const lines = stdout.split('\n');
  const who = /^identity\.principal=(.*)$/.exec(lines[0])?.[1];
  if (typeof principal === 'string') assert.equal(who, principal, stdout);
  else assert.match(who ?? '', principal, stdout);
  assert.match(lines[1], new RegExp(`^identity\\.instance=${UUID}$`), stdout);
  assert.match(lines[2], /^random=[0-9a-f]{32}$/, stdout);
  assert.equal(lines[3], 'scope.restrict=2:0', stdout);
  assert.equal(lines.length, 5, stdout);
}

describe('built-in services through every command', () => {
  let home: TestHome;
  before(() => {
    home = makeHome();
  });
  after(async () => {
    await home.cleanup();
  });

  it('gate call --in-process: identity (principal local), random, scope', async () => {
    const r = await gate(home, ['call', '--in-process', BUILTINS, 'main']);
    assert.equal(r.code, 0, r.stderr);
    assertReport(r.stdout, 'local');
  });

  it('gate call through the daemon: the same services', async () => {
    const r = await gate(home, ['call', BUILTINS, 'main']);
    assert.equal(r.code, 0, r.stderr);
    assertReport(r.stdout, 'local');
  });

  it('gate-server on worker threads: for a key holder and for an anonymous caller', async () => {
    const server = await startServer(home, 'server', ['-o', 'runtime.workers=1']);
    try {
      const signed = await gate(home, [server.url, 'call', BUILTINS, 'main']);
      assert.equal(signed.code, 0, signed.stderr);
      assertReport(signed.stdout, /^ed25519:[A-Za-z0-9_-]{43}$/);
      const anonymous = await gate(home, ['-o', 'identityfile=', server.url, 'call', BUILTINS, 'main']);
      assert.equal(anonymous.code, 0, anonymous.stderr);
      assertReport(anonymous.stdout, '');
    } finally {
      await server.stop();
    }
  });

  it('the same keys turn services off in gate-server (-o) and in daemon.toml (daemon, in-process)', async () => {
    let server: ServerProcess | undefined;
    const config = path.join(home.dir, 'config', 'gate');
    mkdirSync(config, { recursive: true });
    writeFileSync(path.join(config, 'daemon.toml'), '[service.random]\nenabled = false\n[service.identity]\nanonymous = false\n');
    try {
      server = await startServer(home, 'limited', ['-o', 'runtime.workers=1', '-o', 'service.random.enabled=false', '-o', 'service.identity.anonymous=false']);
      const anonymous = await gate(home, ['-o', 'identityfile=', server.url, 'call', BUILTINS, 'main']);
      assert.equal(anonymous.code, 0, anonymous.stderr);
      assert.match(anonymous.stdout, /^identity unavailable\nrandom unavailable\nscope\.restrict=2:0\n$/);
      const inProcess = await gate(home, ['call', '--in-process', BUILTINS, 'main']);
      assert.equal(inProcess.code, 0, inProcess.stderr);
      assert.match(inProcess.stdout, /^identity\.principal=local\n.*\nrandom unavailable\n/);
    } finally {
      await server?.stop();
      writeFileSync(path.join(config, 'daemon.toml'), '');
    }
  });
});
