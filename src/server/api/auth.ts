// Bearer tokens as Gate checks them (auth.md): compact JWS signed with the
// caller's own Ed25519 key, which travels in the header's jwk and *is* the
// principal. The order of the checks decides which error a bad token gets.
//
// A client sends the same token with every request until it expires, and
// checking a signature costs more than the rest of a small call: a token
// without a nonce that passed is remembered (only its expiry can change
// the answer), and so is each key's KeyObject. A token with a nonce is
// checked every time (it is good once).

import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { HttpError } from './errors.ts';
import { RecentMap } from '../util/recent-map.ts';

export const LOCAL_PRINCIPAL = 'local';
const MAX_EXPIRY_SECONDS = 900;
const MAX_SCOPE_TOKENS = 10;
const MAX_NONCE_LENGTH = 256;
/** Tokens and keys remembered. */
const TOKENS_KEPT = 10_000;
const KEYS_KEPT = 10_000;

export interface Principal {
  /** Textual id: `ed25519:<canonical base64url key>` or `local`. */
  readonly id: string;
  /** Raw key bytes (32 zero bytes for local). */
  readonly key: Uint8Array;
}

export interface Credentials {
  principal: Principal;
  scope: string[];
}

/** Records nonces; false when (key, nonce) was already used. */
export interface NonceStore {
  check(key: Uint8Array, nonce: string, expires: number): boolean;
}

export interface VerifierOptions {
  /** Accepted audience strings; the first is the realm of WWW-Authenticate. */
  audiences: string[];
  nonces?: NonceStore;
  /** Accept unsigned `alg: none` tokens as principal `local` (local daemon only). */
  local?: boolean;
  /** Unix seconds. */
  now?: () => number;
}

/** Failure type, for logs and metrics. */
export type AuthFailure = 'AUTH_MISSING' | 'AUTH_INVALID' | 'AUTH_EXPIRED' | 'AUTH_REUSED' | 'PRINCIPAL_KEY_ERROR' | 'SCOPE_TOO_LARGE' | 'AUTH_DENIED';

export class AuthError extends HttpError {
  readonly failure: AuthFailure;
  constructor(realm: string, failure: AuthFailure, text: string, error?: string, description?: string) {
    let challenge = `Bearer realm=${JSON.stringify(realm)}`;
    if (error) challenge += ` error="${error}"`;
    if (description) challenge += ` error_description="${description}"`;
    super(401, text, { 'WWW-Authenticate': challenge });
    this.failure = failure;
  }
}

export class Verifier {
  readonly realm: string;
  /** The accepted audiences, the realm first. */
  readonly audiences: readonly string[];
  private readonly accepted: Set<string>;
  private readonly nonces: NonceStore | undefined;
  private readonly local: boolean;
  private readonly now: () => number;
  /** Tokens without a nonce that passed, with their expiry (0: an unsigned local token that never expires). */
  private readonly passed = new RecentMap<string, { creds: Credentials; exp: number; expires: boolean }>(TOKENS_KEPT);
  private readonly publicKeys = new RecentMap<string, KeyObject>(KEYS_KEPT);

  constructor(options: VerifierOptions) {
    this.audiences = [...options.audiences];
    this.accepted = new Set(options.audiences);
    this.realm = options.audiences[0] ?? '';
    this.nonces = options.nonces;
    this.local = options.local ?? false;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  missing(): AuthError {
    return new AuthError(this.realm, 'AUTH_MISSING', 'missing authentication credentials');
  }

  anonymous(): AuthError {
    return new AuthError(this.realm, 'AUTH_DENIED', 'anonymous access not supported');
  }

  /** Verify the Authorization header values; undefined when there are none. */
  verifyHeaders(values: readonly string[] | undefined): Credentials | undefined {
    if (!values || values.length === 0) return undefined;
    if (values.length > 1) {
      throw new AuthError(this.realm, 'AUTH_INVALID', 'multiple Authorization headers', 'invalid_request', 'multiple Authorization headers');
    }
    return this.verifyBearer(values[0]);
  }

  /** Verify one `Bearer <token>` string. */
  verifyBearer(value: string): Credentials {
    const s = value.replace(/^ +| +$/g, '');
    const space = s.indexOf(' ');
    if (space !== 6 || s.slice(0, 6).toLowerCase() !== 'bearer') {
      throw new AuthError(this.realm, 'AUTH_INVALID', 'invalid_request', 'invalid_request');
    }
    return this.verifyToken(s.slice(7).replace(/^ +/, ''));
  }

  verifyToken(token: string): Credentials {
    const known = this.passed.get(token);
    if (known) {
      if (known.expires && known.exp - this.now() < 0) {
        this.passed.delete(token);
        throw new AuthError(this.realm, 'AUTH_EXPIRED', 'token has expired', 'invalid_token', 'token has expired');
      }
      return known.creds;
    }
    const invalid = () => new AuthError(this.realm, 'AUTH_INVALID', 'invalid_token', 'invalid_token');
    const described = (failure: AuthFailure, text: string) =>
      new AuthError(this.realm, failure, text, 'invalid_token', text);

    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot2 < 0) throw invalid();
    const parts = [token.slice(0, dot1), token.slice(dot1 + 1, dot2), token.slice(dot2 + 1)];
    const decoded = parts.map(b64urlDecode);
    if (decoded.some((d) => d === undefined)) throw invalid();
    const [headerBytes, claimsBytes, signature] = decoded as Uint8Array[];

    const header = parseObject(headerBytes);
    if (!header) throw invalid();
    const alg = member(header, 'alg');
    let principal: Principal;
    let publicKey: KeyObject | undefined;
    if (alg === 'EdDSA') {
      const jwk = member(header, 'jwk');
      if (!isObject(jwk) || member(jwk, 'kty') !== 'OKP' || member(jwk, 'crv') !== 'Ed25519') throw invalid();
      const x = member(jwk, 'x');
      if (typeof x !== 'string') throw invalid();
      const key = parsePrincipalKey(x);
      if (typeof key === 'string') throw described('PRINCIPAL_KEY_ERROR', key);
      const canonical = b64urlEncode(key);
      principal = { id: `ed25519:${canonical}`, key };
      publicKey = this.publicKeys.get(canonical);
      if (!publicKey) {
        publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: canonical }, format: 'jwk' });
        this.publicKeys.set(canonical, publicKey);
      }
    } else if (alg === 'none' && this.local) {
      principal = { id: LOCAL_PRINCIPAL, key: new Uint8Array(32) };
    } else {
      throw invalid();
    }

    const claims = parseObject(claimsBytes);
    if (!claims) throw invalid();
    const exp = member(claims, 'exp') ?? 0;
    if (typeof exp !== 'number' || !Number.isInteger(exp)) throw invalid();
    const aud = member(claims, 'aud');
    const nonce = member(claims, 'nonce');
    const scope = member(claims, 'scope');
    if ((aud !== undefined && aud !== null && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) ||
      (nonce !== undefined && nonce !== null && typeof nonce !== 'string') ||
      (scope !== undefined && scope !== null && typeof scope !== 'string')) {
      throw invalid();
    }

    if (!(alg === 'none' && exp === 0)) {
      const margin = exp - this.now();
      if (margin < 0) throw new AuthError(this.realm, 'AUTH_EXPIRED', 'token has expired', 'invalid_token', 'token has expired');
      if (margin > MAX_EXPIRY_SECONDS) throw described('AUTH_INVALID', 'token expiration is too far in the future');
    }
    if (Array.isArray(aud) && aud.length > 0 && !aud.some((a) => this.accepted.has(a as string))) throw invalid();

    if (publicKey) {
      if (signature.byteLength !== 64) throw invalid();
      const signed = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
      if (!verify(null, signed, publicKey, signature)) throw invalid();
    } else if (signature.byteLength !== 0 || parts[2] !== '') {
      throw invalid();
    }

    if (typeof nonce === 'string' && nonce !== '') {
      if (!this.nonces || alg === 'none') throw described('AUTH_INVALID', 'nonce not supported');
      let fresh = false;
      try {
        fresh = nonce.length <= MAX_NONCE_LENGTH && this.nonces.check(principal.key, nonce, exp);
      } catch {
        fresh = false;
      }
      if (!fresh) throw described('AUTH_REUSED', 'token has already been used');
    }

    const tokens = typeof scope === 'string' && scope !== '' ? scope.split(' ') : [];
    if (tokens.length > MAX_SCOPE_TOKENS) throw described('SCOPE_TOO_LARGE', 'scope has too many tokens');
    // Gate expands aliases of registered scope names here; no service of ours registers one.
    const creds: Credentials = Object.freeze({ principal: Object.freeze(principal), scope: Object.freeze(tokens) as string[] });
    if (typeof nonce !== 'string' || nonce === '') this.passed.set(token, { creds, exp, expires: !(alg === 'none' && exp === 0) });
    return creds;
  }
}

/** The 32 key bytes of a jwk.x value, or the reason it is unacceptable. */
export function parsePrincipalKey(x: string): Uint8Array | string {
  if (x.length !== 43) return 'encoded principal key has wrong length';
  const key = b64urlDecode(x);
  if (!key) return 'base64url encoding of principal key is invalid';
  if (key.byteLength !== 32) return 'decoded principal key has wrong length';
  return key;
}

/** Principal id of a raw Ed25519 public key. */
export function principalId(key: Uint8Array): string {
  return `ed25519:${b64urlEncode(key)}`;
}

export function b64urlEncode(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Strict unpadded base64url; undefined on any other character. */
export function b64urlDecode(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

function parseObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Go matches JSON member names case-insensitively (an exact match wins). */
function member(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === name) return v;
  return undefined;
}
