// The client's key reading and tokens, checked by the server's verifier:
// what `gate` signs is what gate-server accepts, once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOpenSSHKey } from '../../src/cli/ssh-key.ts';
import { signedBearer, unsignedBearer } from '../../src/cli/token.ts';
import { Verifier, type NonceStore } from '../../src/server/api/auth.ts';
import { openSSHKey } from './helpers.ts';

const AUDIENCE = 'https://gate.example.net/gate-0/';

function nonceStore(): NonceStore {
  const seen = new Set<string>();
  return {
    check(key, nonce) {
      const k = `${Buffer.from(key).toString('hex')}/${nonce}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    },
  };
}

describe('client tokens', () => {
  it('are accepted by the server as the key holder, with audience, scope and a single-use nonce', () => {
    const key = parseOpenSSHKey(openSSHKey());
    const verifier = new Verifier({ audiences: [AUDIENCE], nonces: nonceStore() });
    const bearer = signedBearer(key, { audience: AUDIENCE, scope: ['b', 'a'], nonce: true });
    const creds = verifier.verifyBearer(bearer);
    assert.equal(creds.principal.id, `ed25519:${key.x}`);
    assert.deepEqual(creds.scope, ['a', 'b']);
    assert.throws(() => verifier.verifyBearer(bearer), /token has already been used/);
    // A fresh token for the next request.
    assert.equal(verifier.verifyBearer(signedBearer(key, { audience: AUDIENCE, nonce: true })).principal.id, `ed25519:${key.x}`);
  });

  it('are refused for another audience and after they expire', () => {
    const key = parseOpenSSHKey(openSSHKey());
    const verifier = new Verifier({ audiences: [AUDIENCE] });
    assert.throws(() => verifier.verifyBearer(signedBearer(key, { audience: 'https://other.example/gate-0/' })), /invalid_token/);
    const old = signedBearer(key, { audience: AUDIENCE, now: Math.floor(Date.now() / 1000) - 120 });
    assert.throws(() => verifier.verifyBearer(old), /token has expired/);
  });

  it('signed by a different key than the header names are refused', () => {
    const a = parseOpenSSHKey(openSSHKey());
    const b = parseOpenSSHKey(openSSHKey());
    const [, body, signature] = signedBearer(a, { audience: AUDIENCE }).slice(7).split('.');
    const header = signedBearer(b, { audience: AUDIENCE }).slice(7).split('.')[0];
    assert.throws(() => new Verifier({ audiences: [AUDIENCE] }).verifyBearer(`Bearer ${header}.${body}.${signature}`), /invalid_token/);
  });

  it('unsigned local tokens pass only a local-mode verifier', () => {
    const bearer = unsignedBearer({ scope: ['program:system'] });
    assert.equal(new Verifier({ audiences: [AUDIENCE], local: true }).verifyBearer(bearer).principal.id, 'local');
    assert.throws(() => new Verifier({ audiences: [AUDIENCE] }).verifyBearer(bearer), /invalid_token/);
  });

  it('key files: a corrupted key is refused', () => {
    const text = openSSHKey();
    const lines = text.split('\n');
    // Flip bits deep in the private section.
    const body = Buffer.from(lines.slice(1, -2).join(''), 'base64');
    body[body.length - 40] ^= 0xff;
    const broken = `${lines[0]}\n${body.toString('base64')}\n${lines[lines.length - 2]}\n`;
    assert.throws(() => parseOpenSSHKey(broken), /corrupt OpenSSH private key/);
  });
});
