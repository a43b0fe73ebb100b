// The server's identity token published in the API document (auth.md §9.1),
// signed with an Ed25519 key when one is configured.

import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { b64urlEncode } from './auth.ts';

/** Read an Ed25519 private key: OpenSSH (unencrypted) or PKCS#8 PEM. */
export function readPrivateKey(file: string): KeyObject {
  const text = readFileSync(file, 'utf8');
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return createPrivateKey(text);
  const seed = openSshSeed(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  if (!seed) throw new Error(`${file}: not an Ed25519 private key`);
  // PKCS#8 wrapping of a raw Ed25519 seed.
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** The 32-byte seed of an unencrypted openssh-key-v1 Ed25519 key. */
function openSshSeed(blob: Buffer): Buffer | undefined {
  const magic = 'openssh-key-v1\0';
  if (blob.toString('latin1', 0, magic.length) !== magic) return undefined;
  let at = magic.length;
  const str = (): Buffer => {
    const n = blob.readUInt32BE(at);
    const s = blob.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return s;
  };
  try {
    if (str().toString() !== 'none' || str().toString() !== 'none') return undefined; // cipher, kdf
    str(); // kdf options
    if (blob.readUInt32BE(at) !== 1) return undefined;
    at += 4;
    str(); // public key
    const priv = str();
    blob = priv;
    at = 8; // two check integers
    if (str().toString() !== 'ssh-ed25519') return undefined;
    str(); // public
    const secret = str();
    return secret.length === 64 ? secret.subarray(0, 32) : undefined;
  } catch {
    return undefined;
  }
}

export function identityToken(uuid: string, audience: string, key?: KeyObject): string {
  const enc = (v: unknown) => b64urlEncode(Buffer.from(JSON.stringify(v)));
  if (!key) return `${enc({ alg: 'none' })}.${enc({ iss: audience, uuid })}.`;
  const x = (createPublicKey(key).export({ format: 'jwk' }) as { x: string }).x;
  const head = enc({ alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x } });
  const claims = enc({ exp: Math.floor(Date.now() / 1000) + 90 * 86400, iss: audience, uuid });
  const sig = sign(null, Buffer.from(`${head}.${claims}`), key);
  return `${head}.${claims}.${b64urlEncode(sig)}`;
}
