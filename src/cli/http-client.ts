// The client side of Gate's /gate-0/ HTTP API, over a Unix socket (the local
// daemon) or TCP/TLS (a server). Every request carries a fresh token; any
// answer other than 200/201/204 becomes a one-line error with the server's
// text (cli.md §2.8). Transport failures become messages that name the
// server and what went wrong.

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { CliError } from './errors.ts';

// Not `import http from 'node:http'`: the ESM view of node:http evaluates its
// lazy WebSocket export, which loads undici and zlib (about 30 ms of every
// command's start). node:https (TLS, ~15 ms) only for an https server.
const http = process.getBuiltinModule('node:http');
const net = process.getBuiltinModule('node:net');
import { parseStatus, statusText } from './status.ts';

export const API_PATH = 'gate-0/';
export const MODULE_PATH = 'module/sha256/';
export const INSTANCE_PATH = 'instance/';

export type Target = { kind: 'unix'; socket: string } | { kind: 'remote'; url: URL };

export interface RequestOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** Relative to the API root, e.g. `module/sha256/<hex>`. */
  path: string;
  query?: Array<[string, string]>;
  headers?: Record<string, string>;
  /** A buffer (sent with Content-Length) or a stream (chunked unless headers give a length). */
  body?: Uint8Array | Readable;
  /** Ask for the Gate-Status trailer. */
  trailers?: boolean;
  /** Send credentials (default true). */
  auth?: boolean;
}

export interface ClientOptions {
  target: Target;
  /** The Authorization value for one request, or undefined for none. */
  authorization: () => string | undefined;
  /** Called when a request could not connect, before the error is reported; may fix it (start the daemon) and return true to retry once. */
  onUnreachable?: () => Promise<boolean>;
}

export class GateClient {
  readonly target: Target;
  private readonly authorization: () => string | undefined;
  private readonly onUnreachable: (() => Promise<boolean>) | undefined;

  constructor(options: ClientOptions) {
    this.target = options.target;
    this.authorization = options.authorization;
    this.onUnreachable = options.onUnreachable;
  }

  /** How messages name the other side. */
  get name(): string {
    return this.target.kind === 'unix' ? 'the local gate daemon' : this.target.url.origin;
  }

  /** The server's audience string: `<scheme>://<host[:port]><path>/gate-0/`. */
  get audience(): string | undefined {
    if (this.target.kind === 'unix') return undefined;
    return this.base();
  }

  private base(): string {
    if (this.target.kind === 'unix') return `http://localhost/${API_PATH}`;
    const u = this.target.url;
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}/${API_PATH}`;
  }

  url(path: string, query: Array<[string, string]> = []): URL {
    const u = new URL(path, this.base());
    for (const [k, v] of query) u.searchParams.append(k, v);
    return u;
  }

  /** Send a request; resolves with the response once its head has arrived and its status is a success. */
  async request(options: RequestOptions): Promise<IncomingMessage> {
    try {
      return await this.attempt(options);
    } catch (error) {
      // Nothing was sent (a body is piped only once connected), so the request can be made again.
      if (error instanceof Unreachable && this.onUnreachable && (await this.onUnreachable())) {
        return this.attempt(options);
      }
      throw error instanceof Unreachable ? new CliError(error.message) : error;
    }
  }

  private attempt(options: RequestOptions): Promise<IncomingMessage> {
    const u = this.url(options.path, options.query);
    const headers: OutgoingHttpHeaders = { ...options.headers };
    if (options.auth !== false) {
      const auth = this.authorization();
      if (auth) headers.Authorization = auth;
    }
    if (options.trailers) headers.TE = 'trailers';
    if (options.body instanceof Uint8Array) headers['Content-Length'] = String(options.body.byteLength);
    // A streamed body (standard input) may still be arriving when the program's
    // output has ended. With Connection: close the server would close at once,
    // and the input arriving after that makes its kernel reset the connection,
    // which can destroy the end of the response before we have read it. So the
    // server keeps the connection until we go (the process exits when done).
    if (options.body instanceof Readable) headers.Connection = 'keep-alive';
    const target = this.target;
    const request =
      target.kind === 'unix'
        ? // Connected by hand: an agent (even agent: false) tests the host name against
          // node:net's IPv6 pattern, ~5 ms on a fresh process, for a socket that has no host.
          http.request({ createConnection: () => net.createConnection(target.socket), path: u.pathname + u.search, method: options.method, headers })
        : (u.protocol === 'https:' ? process.getBuiltinModule('node:https') : http).request(u, { method: options.method, headers, agent: false });

    return new Promise((resolve, reject) => {
      let answered = false;
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (!answered) reject(this.transportError(error));
      });
      request.on('response', (res) => {
        answered = true;
        if (res.statusCode === 200 || res.statusCode === 201 || res.statusCode === 204) {
          const status = res.headers['gate-status'];
          if (typeof status === 'string' && parseStatus(status).error) {
            res.resume();
            reject(new CliError(statusText(parseStatus(status))));
            return;
          }
          resolve(res);
          return;
        }
        readAll(res).then(
          (body) => reject(new CliError(errorText(res, body), 1)),
          () => reject(new CliError(`${res.statusCode} ${http.STATUS_CODES[res.statusCode ?? 0] ?? ''}`.trim())),
        );
      });
      if (options.body instanceof Uint8Array) request.end(options.body);
      else if (options.body) {
        const body = options.body;
        body.on('error', (error) => request.destroy(error));
        // Send the head now: a call's input may not come until its output has.
        request.flushHeaders();
        request.once('socket', (socket) => {
          if (socket.connecting) socket.once('connect', () => body.pipe(request));
          else body.pipe(request);
        });
      } else request.end();
    });
  }

  private transportError(error: NodeJS.ErrnoException): Error {
    const name = this.name;
    switch (error.code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
        return new Unreachable(`cannot connect to ${name}: connection refused`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new Unreachable(`cannot connect to ${name}: host not found`);
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return new Unreachable(`cannot connect to ${name}: ${error.code === 'ETIMEDOUT' ? 'timed out' : 'unreachable'}`);
      case 'ECONNRESET':
        return new CliError(`${name} closed the connection`);
      default:
        return new CliError(`${name}: ${error.message}`);
    }
  }

  /** A request whose answer is JSON. */
  async json<T>(options: RequestOptions): Promise<T> {
    const res = await this.request({ ...options, headers: { Accept: 'application/json, text/plain', ...options.headers } });
    const body = await readAll(res);
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw new CliError(`${this.name} sent unreadable JSON`);
    }
  }

  /** A request whose answer body is ignored; resolves with the response (headers). */
  async empty(options: RequestOptions): Promise<IncomingMessage> {
    const res = await this.request(options);
    await readAll(res);
    return res;
  }
}

/** A connection failure that the caller might cure (by starting the daemon). */
class Unreachable extends Error {}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function errorText(res: IncomingMessage, body: Buffer): string {
  const type = (res.headers['content-type'] ?? '').split(';')[0].trim();
  const text = body.toString('utf8').trim();
  if (type === 'text/plain' && text !== '') return text.split('\n')[0];
  return `${res.statusCode} ${http.STATUS_CODES[res.statusCode ?? 0] ?? ''}`.trim();
}
