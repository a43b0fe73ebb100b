// The user's OpenSSH Ed25519 private key, read by hand from the
// "openssh-key-v1" container (PROTOCOL.key in OpenSSH): we only need the
// unencrypted Ed25519 case, and every other case gets a message saying why.

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliError } from './errors.ts';

// node:crypto loads only when a key is read (see token.ts).
const crypto = () => process.getBuiltinModule('node:crypto');

const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';
const MAGIC = 'openssh-key-v1\0';

export interface Ed25519Key {
  privateKey: KeyObject;
  /** The 32 raw public key bytes. */
  publicKey: Uint8Array;
  /** Unpadded base64url of the public key: the JWK `x`. */
  x: string;
}

/** Reads the key file; undefined when the file exists but is empty (unsigned local tokens). */
export function readIdentityFile(file: string): Ed25519Key | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError(`${file}: no such key file (create one with "ssh-keygen -t ed25519", or set identityfile in client.toml)`);
    }
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  if (text.length === 0) return undefined;
  try {
    return parseOpenSSHKey(text);
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
}

/** Parse the text of an OpenSSH private key file. Throws with a one-line reason. */
export function parseOpenSSHKey(text: string): Ed25519Key {
  const begin = text.indexOf(BEGIN);
  if (begin < 0) {
    if (/-----BEGIN (RSA|EC|DSA|ENCRYPTED)? ?PRIVATE KEY-----/.test(text)) {
      throw new Error('not an Ed25519 private key in OpenSSH format (PEM/PKCS#8 keys are not supported; use ssh-keygen -t ed25519)');
    }
    throw new Error('not an OpenSSH private key');
  }
  const end = text.indexOf(END, begin);
  if (end < 0) throw new Error('truncated OpenSSH private key');
  const blob = Buffer.from(text.slice(begin + BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  const r = new Reader(blob);
  if (r.bytes(MAGIC.length).toString('latin1') !== MAGIC) throw new Error('not an OpenSSH private key (bad magic)');
  const cipher = r.string().toString();
  const kdf = r.string().toString();
  r.string(); // kdf options
  if (cipher !== 'none' || kdf !== 'none') {
    throw new Error(`the key is encrypted with a passphrase (${cipher}); gate needs an unencrypted Ed25519 key (remove the passphrase with "ssh-keygen -p" or make a separate key)`);
  }
  const count = r.uint32();
  if (count !== 1) throw new Error(`the file holds ${count} keys; gate needs exactly one`);
  const publicBlob = new Reader(r.string());
  const type = publicBlob.string().toString();
  if (type !== 'ssh-ed25519') throw new Error(`not an Ed25519 private key (it is ${type}; make one with "ssh-keygen -t ed25519")`);
  const publicKey = publicBlob.string();
  const priv = new Reader(r.string());
  if (priv.uint32() !== priv.uint32()) throw new Error('corrupt OpenSSH private key (check words differ)');
  if (priv.string().toString() !== 'ssh-ed25519') throw new Error('corrupt OpenSSH private key (key types differ)');
  const publicAgain = priv.string();
  const secret = priv.string();
  if (publicKey.length !== 32 || !publicAgain.equals(publicKey) || secret.length !== 64 || !secret.subarray(32).equals(publicKey)) {
    throw new Error('corrupt OpenSSH private key (Ed25519 key sizes)');
  }
  const x = publicKey.toString('base64url');
  const privateKey = crypto().createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: secret.subarray(0, 32).toString('base64url'), x }, format: 'jwk' });
  // The secret must belong to the public key it claims.
  const derived = crypto().createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (derived !== x) throw new Error('corrupt OpenSSH private key (public key does not match)');
  return { privateKey, publicKey: new Uint8Array(publicKey), x };
}

/** Big-endian SSH wire reader (RFC 4251 §5). */
class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new Error('truncated OpenSSH private key');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
}
