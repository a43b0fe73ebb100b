// Service availability per server and per principal (src/services/config.ts),
// as a program sees it: catalog contents and discovery states.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceConfigError, buildRegistry } from '../../src/services/config.ts';
import { contextFor, runToEnd } from './helpers.ts';

const ALICE = 'ed25519:' + 'A'.repeat(43);
const BOB = 'ed25519:' + 'B'.repeat(43);

async function view(config: Parameters<typeof buildRegistry>[0], principal?: string, perPrincipal = false) {
  const registry = buildRegistry(config, perPrincipal ? principal : undefined);
  const { status, log } = await runToEnd('catalog', 'main', registry, contextFor(principal));
  assert.equal(status.state, 'HALTED', log);
  const end = log.lastIndexOf('}\n') + 2;
  const names = (JSON.parse(log.slice(0, end)) as { services: { name: string }[] }).services.map((s) => s.name);
  const discovered = Object.fromEntries(
    log
      .slice(end)
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
  return { names, discovered };
}

describe('service configuration', () => {
  it("a default server offers Gate's default catalog", async () => {
    const { names, discovered } = await view({});
    assert.deepEqual(names, ['catalog', 'identity', 'origin', 'random', 'scope']);
    assert.deepEqual(discovered, { identity: '1', random: '1', scope: '1', 'gate.computer/localhost': '0', peer: '0' });
  });

  it('per server: disabled services and bitsperminute ≤ 0 are gone; localhost appears with an address', async () => {
    const { names, discovered } = await view({
      identity: { enabled: false },
      random: { bitsperminute: 0 },
      localhost: { addr: 'http://127.0.0.1:9' },
    });
    assert.deepEqual(names, ['catalog', 'gate.computer/localhost', 'origin', 'scope']);
    assert.equal(discovered.identity, '0');
    assert.equal(discovered.random, '0');
    assert.equal(discovered['gate.computer/localhost'], '1');
  });

  it('per principal: allow and deny lists, anonymous access', async () => {
    const config = {
      random: { principals: [ALICE] },
      identity: { denyprincipals: [BOB] },
      scope: { anonymous: false },
    };
    const alice = await view(config, ALICE);
    const bob = await view(config, BOB);
    const anon = await view(config);
    assert.deepEqual(alice.names, ['catalog', 'identity', 'origin', 'random', 'scope']);
    assert.deepEqual(bob.names, ['catalog', 'origin', 'scope']);
    assert.deepEqual(anon.names, ['catalog', 'identity', 'origin']);
    assert.equal(bob.discovered.random, '0');
    assert.equal(bob.discovered.identity, '0');
    assert.equal(anon.discovered.scope, '0');
    // A registry built for one principal shows the same view.
    assert.deepEqual((await view(config, BOB, true)).names, bob.names);
  });

  it('bad values are refused with ERR_SERVICE_CONFIG', () => {
    assert.throws(() => buildRegistry({ random: { bitsperminute: 'x' as unknown as number } }), ServiceConfigError);
    assert.throws(() => buildRegistry({ localhost: { addr: 'ftp://x' } }), { code: 'ERR_SERVICE_CONFIG' });
    assert.throws(() => buildRegistry({ identity: { principals: 'x' as unknown as string[] } }), /list of strings/);
  });
});
