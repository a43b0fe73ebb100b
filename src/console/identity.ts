// The console's identity on the server: an Ed25519 key that the page
// generates or imports (an unencrypted OpenSSH private key, such as
// ~/.ssh/id_ed25519, or PKCS#8 PEM), kept in this browser's IndexedDB, and
// the bearer tokens signed with it for each request (as the gate command
// makes them: EdDSA JWT, the public key in the header's jwk, one minute of
// validity, the server's API URL as audience, a single-use nonce).

export interface Identity {
  /** `ed25519:<base64url public key>`, as the server names the principal. */
  readonly principal: string;
  /** The public key, base64url (the jwk's x). */
  readonly x: string;
  readonly privateKey: CryptoKey;
}

const DB = 'gate-console';
const STORE = 'keys';
const KEY = 'identity';
const TOKEN_SECONDS = 60;

export function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text.replace(/\s+/g, ''));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

const utf8 = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s);

function database(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function store<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await database();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = f(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result as T);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/** The identity this browser keeps for the console, if any. */
export async function loadIdentity(): Promise<Identity | null> {
  const saved = await store<{ x: string; privateKey: CryptoKey } | undefined>('readonly', (s) => s.get(KEY));
  return saved ? { principal: `ed25519:${saved.x}`, x: saved.x, privateKey: saved.privateKey } : null;
}

async function keep(x: string, privateKey: CryptoKey): Promise<Identity> {
  await store('readwrite', (s) => s.put({ x, privateKey }, KEY));
  return { principal: `ed25519:${x}`, x, privateKey };
}

export async function forgetIdentity(): Promise<void> {
  await store('readwrite', (s) => s.delete(KEY));
}

/** A new key, kept in this browser (not extractable: it never leaves it). */
export async function generateIdentity(): Promise<Identity> {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const x = b64url(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)));
  return keep(x, pair.privateKey);
}

// PKCS#8 of an Ed25519 private key is this prefix and the 32-byte seed (RFC 8410).
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/** An OpenSSH or PKCS#8 PEM private key, as text. */
export async function importIdentity(text: string): Promise<Identity> {
  const pem = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!pem) throw new Error('not a PEM private key (expected an OpenSSH or PKCS#8 Ed25519 key)');
  const der = fromBase64(pem[2]);
  let pkcs8: Uint8Array;
  if (pem[1] === 'OPENSSH PRIVATE KEY') pkcs8 = Uint8Array.from([...PKCS8_PREFIX, ...openSshSeed(der)]);
  else if (pem[1] === 'PRIVATE KEY') pkcs8 = der;
  else throw new Error(`${pem[1].toLowerCase()} is not supported (expected an OpenSSH or PKCS#8 Ed25519 key)`);
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey('pkcs8', pkcs8 as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, true, ['sign']);
  } catch {
    throw new Error('not an Ed25519 private key');
  }
  const { x } = (await crypto.subtle.exportKey('jwk', key)) as JsonWebKey;
  if (!x) throw new Error('not an Ed25519 private key');
  // Kept without the possibility to export it again.
  const kept = await crypto.subtle.importKey('pkcs8', pkcs8 as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['sign']);
  return keep(x, kept);
}

/** Reads SSH wire-format fields (RFC 4251): uint32 and length-prefixed strings. */
class SshReader {
  private readonly blob: Uint8Array;
  private readonly view: DataView;
  private at = 0;

  constructor(blob: Uint8Array) {
    this.blob = blob;
    this.view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  }

  skip(n: number): void {
    this.at += n;
  }

  u32(): number {
    if (this.at + 4 > this.blob.length) throw new Error('truncated OpenSSH key');
    this.at += 4;
    return this.view.getUint32(this.at - 4);
  }

  bytes(): Uint8Array {
    const n = this.u32();
    if (this.at + n > this.blob.length) throw new Error('truncated OpenSSH key');
    this.at += n;
    return this.blob.subarray(this.at - n, this.at);
  }

  text(): string {
    return new TextDecoder().decode(this.bytes());
  }
}

const OPENSSH_MAGIC = 'openssh-key-v1\0';

/** The 32-byte seed of the one Ed25519 key in an unencrypted openssh-key-v1 blob. */
function openSshSeed(blob: Uint8Array): Uint8Array {
  if (new TextDecoder().decode(blob.subarray(0, OPENSSH_MAGIC.length)) !== OPENSSH_MAGIC) throw new Error('not an OpenSSH private key');
  const r = new SshReader(blob);
  r.skip(OPENSSH_MAGIC.length);
  if (r.text() !== 'none') throw new Error('the key has a passphrase: remove it (ssh-keygen -p) or import an unencrypted copy');
  r.bytes(); // kdf name
  r.bytes(); // kdf options
  if (r.u32() !== 1) throw new Error('the file holds more than one key');
  r.bytes(); // public key
  const secret = new SshReader(r.bytes());
  if (secret.u32() !== secret.u32()) throw new Error('corrupt OpenSSH key');
  const type = secret.text();
  if (type !== 'ssh-ed25519') throw new Error(`${type} keys are not supported: use an Ed25519 key`);
  secret.bytes(); // public key
  const priv = secret.bytes(); // seed and public key
  if (priv.length !== 64) throw new Error('corrupt OpenSSH key');
  return priv.subarray(0, 32);
}

/** `Bearer <token>` for one request to the server whose API is at `audience` (…/gate-0/). */
export async function bearer(identity: Identity, audience: string): Promise<string> {
  const header = b64url(utf8(JSON.stringify({ alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: identity.x } })));
  const claims = {
    exp: Math.floor(Date.now() / 1000) + TOKEN_SECONDS,
    aud: [audience],
    nonce: b64url(crypto.getRandomValues(new Uint8Array(16))),
  };
  const body = b64url(utf8(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, identity.privateKey, utf8(`${header}.${body}`));
  return `Bearer ${header}.${body}.${b64url(new Uint8Array(signature))}`;
}
