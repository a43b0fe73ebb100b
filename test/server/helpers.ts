// Helpers for end-to-end tests of gate-server: a real server on a loopback
// port with a temporary data dir, Ed25519 principals that sign tokens the
// way Gate's client does, and a node:http request function that reports
// trailers (fetch does not).

import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Logger } from '../../src/server/obs/log.ts';
import { startServer, type ConfigInput, type RunningServer } from '../../src/server/server.ts';
import { root } from '../helpers.ts';

/** Prepared modules are shared by all test servers (preparation is the slow part). */
export const testCacheDir = path.join(os.tmpdir(), 'gate-ts-server-test-cache');

export function wasm(file: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(root, 'guest', file)));
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface TestServer {
  server: RunningServer;
  url: string;
  /** The audience the server accepts (http://127.0.0.1:PORT/gate-0/). */
  audience: string;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

export async function startTestServer(config: ConfigInput = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'gate-server-test-'));
  const logs: string[] = [];
  const server = await startServer({
    listen: { host: '127.0.0.1', port: 0 },
    dataDir: dir,
    config: { ...config, runtime: { cachedir: testCacheDir, ...(config.runtime ?? {}) } },
    log: new Logger('debug', (line) => logs.push(line)),
  });
  return {
    server,
    url: server.url,
    audience: `${server.url}/gate-0/`,
    dataDir: dir,
    logs,
    async close() {
      await server.close();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A principal: an Ed25519 key that signs Gate-style bearer tokens. */
export class Principal {
  readonly privateKey: KeyObject;
  readonly x: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    this.x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  }

  get id(): string {
    return `ed25519:${this.x}`;
  }

  /** The authorized_keys line of this key. */
  authorizedKey(): string {
    const name = Buffer.from('ssh-ed25519');
    const key = Buffer.from(this.x, 'base64url');
    const blob = Buffer.alloc(4 + name.length + 4 + key.length);
    blob.writeUInt32BE(name.length, 0);
    name.copy(blob, 4);
    blob.writeUInt32BE(key.length, 4 + name.length);
    key.copy(blob, 8 + name.length);
    return `ssh-ed25519 ${blob.toString('base64')} test@example`;
  }

  token(claims: Record<string, unknown>, header?: Record<string, unknown>): string {
    const head = b64url(header ?? { alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: this.x } });
    const body = b64url(claims);
    const sig = sign(null, Buffer.from(`${head}.${body}`), this.privateKey).toString('base64url');
    return `${head}.${body}.${sig}`;
  }

  /** `Bearer <token>` valid for a minute at the audience, like the stock client. */
  bearer(audience: string, extra: Record<string, unknown> = {}): string {
    return `Bearer ${this.token({ exp: Math.floor(Date.now() / 1000) + 60, aud: [audience], ...extra })}`;
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: Uint8Array | string;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
}

/** One HTTP request with node:http (trailers included). */
export function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...options.headers };
    if (options.body !== undefined && !options.chunked) headers['Content-Length'] = String(Buffer.byteLength(options.body));
    // A connection per request: a kept-alive one can be closed by the server just as it is reused.
    const req = http.request(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body, text: body.toString() });
      });
      res.on('error', reject);
    });
    req.on('error', (error: Error) => reject(new Error(`${options.method ?? 'GET'} ${url}: ${error.message}`, { cause: error })));
    if (options.body !== undefined && options.chunked) {
      req.write(options.body);
      req.end();
    } else if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

/** A client of one test server acting as one principal (or anonymous). */
export class Client {
  readonly base: string;
  readonly audience: string;
  readonly principal: Principal | undefined;

  constructor(ts: { url: string; audience: string }, principal?: Principal) {
    this.base = ts.url;
    this.audience = ts.audience;
    this.principal = principal;
  }

  auth(): Record<string, string> {
    return this.principal ? { Authorization: this.principal.bearer(this.audience) } : {};
  }

  request(pathAndQuery: string, options: RequestOptions = {}): Promise<Reply> {
    return request(this.base + pathAndQuery, { ...options, headers: { ...this.auth(), ...options.headers } });
  }

  post(pathAndQuery: string, options: RequestOptions = {}): Promise<Reply> {
    return this.request(pathAndQuery, { method: 'POST', ...options });
  }

  /** PUT …?action=pin of a module; returns its hash. */
  async upload(bytes: Uint8Array, tags: string[] = []): Promise<string> {
    const hash = sha256(bytes);
    const q = ['action=pin', ...tags.map((t) => `module-tag=${encodeURIComponent(t)}`)].join('&');
    const r = await this.request(`/gate-0/module/sha256/${hash}?${q}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: bytes,
    });
    if (r.status !== 201) throw new Error(`upload failed: ${r.status} ${r.text}`);
    return hash;
  }

  /** Launch a pinned module; returns the instance id. */
  async launch(hash: string, query = ''): Promise<string> {
    const r = await this.post(`/gate-0/module/sha256/${hash}?action=launch${query}`);
    if (r.status !== 200) throw new Error(`launch failed: ${r.status} ${r.text}`);
    return r.headers['gate-instance'] as string;
  }

  async status(id: string): Promise<Record<string, unknown>> {
    const r = await this.post(`/gate-0/instance/${id}`);
    if (r.status !== 200) throw new Error(`status failed: ${r.status} ${r.text}`);
    return (JSON.parse(r.text) as { status: Record<string, unknown> }).status;
  }

  async wait(id: string): Promise<Record<string, unknown>> {
    const r = await this.post(`/gate-0/instance/${id}?action=wait`);
    if (r.status !== 200) throw new Error(`wait failed: ${r.status} ${r.text}`);
    return JSON.parse(r.headers['gate-status'] as string) as Record<string, unknown>;
  }
}

/** Read from a response stream until `pattern` has been seen. */
export function readUntil(res: http.IncomingMessage, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString();
      if (pattern.test(text)) {
        res.off('data', onData);
        resolve(text);
      }
    };
    res.on('data', onData);
    res.on('end', () => reject(new Error(`stream ended before ${pattern}: ${JSON.stringify(text)}`)));
  });
}

/** Connect to an instance's io and read until `pattern`; the connection is then cut. */
export async function ioLines(c: Client, id: string, pattern: RegExp): Promise<string> {
  const req = http.request(`${c.base}/gate-0/instance/${id}?action=io`, { method: 'POST', headers: c.auth(), agent: false });
  req.flushHeaders();
  const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  assert.equal(res.statusCode, 200);
  const text = await readUntil(res, pattern);
  req.destroy();
  return text;
}
