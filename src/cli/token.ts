// Bearer tokens the client sends (auth.md §5): a fresh compact JWS per
// request, signed with the user's Ed25519 key whose public half rides in the
// header's jwk, valid for one minute, bound to the server's API URL (aud)
// and, unless disabled, made single-use with a random nonce.

import type { Ed25519Key } from './ssh-key.ts';

// node:crypto loads when a token is signed (about 12 ms of a fresh process:
// the daemon's unsigned tokens need none of it), through getBuiltinModule,
// since its ESM view evaluates the lazy webcrypto export too.
const crypto = () => process.getBuiltinModule('node:crypto');

const LIFETIME_SECONDS = 60;

export interface TokenOptions {
  /** The server's audience string, e.g. `https://example.net/gate-0/`. */
  audience?: string;
  scope?: readonly string[];
  nonce?: boolean;
  /** Unix seconds; for tests. */
  now?: number;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function claims(options: TokenOptions): Record<string, unknown> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const out: Record<string, unknown> = { exp: now + LIFETIME_SECONDS };
  if (options.audience) out.aud = [options.audience];
  if (options.nonce) out.nonce = crypto().randomBytes(16).toString('base64url');
  const scope = [...(options.scope ?? [])].sort().join(' ');
  if (scope) out.scope = scope;
  return out;
}

/** `Bearer <EdDSA JWT>`. */
export function signedBearer(key: Ed25519Key, options: TokenOptions): string {
  const header = b64url({ alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: key.x } });
  const body = b64url(claims(options));
  const signature = crypto().sign(null, Buffer.from(`${header}.${body}`, 'ascii'), key.privateKey).toString('base64url');
  return `Bearer ${header}.${body}.${signature}`;
}

/** `Bearer <alg none JWT>.`: accepted only by a local daemon (or a server in local mode). */
export function unsignedBearer(options: TokenOptions): string {
  return `Bearer ${b64url({ alg: 'none' })}.${b64url(claims({ ...options, nonce: false }))}.`;
}
