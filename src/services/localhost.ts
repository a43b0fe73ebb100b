// The gate.computer/localhost service (services.md §4.7): a program makes
// HTTP requests to one configured local HTTP server. The call content is a
// FlatBuffers Call holding a Request; the reply content a Response (flat.ts).
//
// Differences from Gate, all deliberate: requests never block the instance
// (at most maxConcurrent run at once, later ones wait their turn; beyond
// maxOutstanding a call is answered 503 at once), redirects are not
// followed, response bodies are read only up to what fits in a reply, a
// request that takes longer than the timeout is answered 504, a malformed
// Call buffer gets an empty reply (Gate may crash), and a suspended instance
// can be resumed: its unanswered requests are sent again if their method is
// idempotent and answered 502 otherwise.

import { Domain, HEADER_SIZE, makePacket, packetDomain, packetSize } from '../runtime/packet/packet.ts';
import type { AbortRun, SendPacket, ServiceConfig, ServiceFactory, ServiceInstance } from '../runtime/service/service.ts';
import { FlatError, decodeCall, encodeResponse, type LocalRequest } from './flat.ts';
import { ByteReader, ByteWriter, SavedStateError } from './varint.ts';

export const LOCALHOST_NAME = 'gate.computer/localhost';
export const LOCALHOST_REVISION = '0';

/** Where requests go, parsed from the configured address. */
export interface LocalhostTarget {
  readonly scheme: 'http' | 'https';
  /** Authority (host[:port]); `localhost` for a Unix socket. */
  readonly authority: string;
  /** Unix socket path, for `unix:///path` addresses. */
  readonly socketPath?: string;
}

/** One HTTP exchange, as the service asks a transport to perform it. */
export interface TransportRequest {
  readonly target: LocalhostTarget;
  /** A valid HTTP method token. */
  readonly method: string;
  /** Path and query, starting with `/`. */
  readonly path: string;
  /** Host header; the target's authority when absent. */
  readonly host?: string;
  readonly contentType?: string;
  /** Sent with Content-Length when present. */
  readonly body?: Uint8Array;
  /** Read at most this many body bytes; a longer body must make the request fail. */
  readonly maxBodySize: number;
  readonly signal: AbortSignal;
}

export interface TransportResponse {
  readonly status: number;
  readonly contentType?: string;
  readonly body: Uint8Array;
}

/**
 * Performs HTTP requests without following redirects. Rejects on connection
 * or protocol errors and on bodies over maxBodySize.
 */
export type LocalhostTransport = (request: TransportRequest) => Promise<TransportResponse>;

export interface LocalhostOptions {
  /** `http://host[:port]`, `https://…` (path empty or `/`), or `unix:///path/to.sock`. */
  readonly addr: string;
  /** Default: fetchTransport (HTTP and HTTPS only; a Node transport also does Unix sockets and Host). */
  readonly transport?: LocalhostTransport;
  /** Requests in progress at once per instance (Gate: 10). */
  readonly maxConcurrent?: number;
  /** Unanswered calls per instance, at most 255; more are answered 503 at once. Default 64. */
  readonly maxOutstanding?: number;
  /** Milliseconds until a request is answered 504 (default 30000). */
  readonly timeout?: number;
}

/** Parse the configured address; throws a RangeError describing what is wrong. */
export function parseLocalhostAddr(addr: string): LocalhostTarget {
  let u: URL;
  try {
    u = new URL(addr);
  } catch {
    throw new RangeError(`localhost service: address is not an absolute URL: ${addr}`);
  }
  switch (u.protocol) {
    case 'http:':
    case 'https:':
      if (u.hostname === '') throw new RangeError(`localhost service: HTTP address has no host: ${addr}`);
      if (u.pathname !== '' && u.pathname !== '/') {
        throw new RangeError(`localhost service: HTTP address with path is not supported: ${addr}`);
      }
      if (u.username || u.password || u.search || u.hash) {
        throw new RangeError(`localhost service: HTTP address may only have a scheme, host and port: ${addr}`);
      }
      return { scheme: u.protocol === 'http:' ? 'http' : 'https', authority: u.host };
    case 'unix:':
      if (u.host !== '') throw new RangeError(`localhost service: unix address with host is not supported: ${addr}`);
      if (u.pathname === '' || u.pathname === '/') throw new RangeError(`localhost service: unix address has no path: ${addr}`);
      return { scheme: 'http', authority: 'localhost', socketPath: decodeURIComponent(u.pathname) };
    default:
      throw new RangeError(`localhost service: address has unsupported scheme: ${addr}`);
  }
}

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Where a program's URI goes: path and query on the configured server and an
 * optional Host name. Null when the URI is absolute, names a port or cannot
 * be parsed (the program gets 400).
 */
export function resolveLocalUri(uri: string): { path: string; host?: string } | null {
  if (SCHEME.test(uri)) return null;
  let host: string | undefined;
  if (uri.startsWith('//')) {
    const end = uri.slice(2).search(/[/?#]/);
    let authority = end < 0 ? uri.slice(2) : uri.slice(2, 2 + end);
    authority = authority.slice(authority.lastIndexOf('@') + 1); // user info is dropped
    if (/:[^\]]*$/.test(authority)) return null; // a port (outside an IPv6 literal)
    host = authority;
  }
  let u: URL;
  try {
    u = new URL(uri, 'http://localhost.invalid');
  } catch {
    return null;
  }
  if (host !== undefined) host = u.hostname || undefined;
  return { path: (u.pathname || '/') + u.search, ...(host !== undefined ? { host } : {}) };
}

/** Bytes of a reply packet Gate keeps for everything but the body and the content type. */
export const RESPONSE_OVERHEAD = 100;

/** Space a content type takes in a Response: length prefix, bytes, NUL, padding to 4. */
function contentTypeSpace(contentType: string | undefined): number {
  if (!contentType) return 0;
  return 4 + ((encoder.encode(contentType).length + 1 + 3) & ~3);
}

const encoder = new TextEncoder();

/** Methods that may be sent again after a resume (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** A transport using the web fetch API. It cannot set Host and has no Unix socket support. */
export const fetchTransport: LocalhostTransport = async (req) => {
  if (req.target.socketPath !== undefined) throw new Error('fetch transport cannot reach Unix sockets');
  const headers: Record<string, string> = {};
  if (req.contentType !== undefined) headers['content-type'] = req.contentType;
  const res = await fetch(`${req.target.scheme}://${req.target.authority}${req.path}`, {
    method: req.method,
    headers,
    body: req.body as BodyInit | undefined,
    redirect: 'manual',
    signal: req.signal,
  });
  const body = await readLimited(res.body, req.maxBodySize);
  const contentType = res.headers.get('content-type') ?? undefined;
  return { status: res.status, body, ...(contentType ? { contentType } : {}) };
};

/** Read a web stream completely, failing once it exceeds limit bytes. */
export async function readLimited(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (stream === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) {
      await reader.cancel().catch(() => {});
      throw new Error('response body too large');
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export function createLocalhostService(options: LocalhostOptions): ServiceFactory {
  const settings: Settings = {
    target: parseLocalhostAddr(options.addr),
    transport: options.transport ?? fetchTransport,
    maxConcurrent: options.maxConcurrent ?? 10,
    maxOutstanding: options.maxOutstanding ?? 64,
    timeout: options.timeout ?? 30_000,
  };
  if (!(settings.maxConcurrent >= 1) || !(settings.maxOutstanding >= 1 && settings.maxOutstanding <= 255)) {
    throw new RangeError('localhost service: maxConcurrent must be ≥ 1 and maxOutstanding 1…255');
  }
  return {
    name: LOCALHOST_NAME,
    revision: LOCALHOST_REVISION,
    streams: false,
    create(_context, config, saved) {
      return new LocalhostInstance(settings, config, saved);
    },
  };
}

interface Settings {
  readonly target: LocalhostTarget;
  readonly transport: LocalhostTransport;
  readonly maxConcurrent: number;
  readonly maxOutstanding: number;
  readonly timeout: number;
}

interface Call {
  /** The whole request packet (kept for the saved state). */
  readonly packet: Uint8Array;
  /** Answer without asking the server (restored non-idempotent requests). */
  readonly failWith?: number;
  running: boolean;
  controller?: AbortController;
  timer?: ReturnType<typeof setTimeout>;
}

class LocalhostInstance implements ServiceInstance {
  readonly #s: Settings;
  readonly #code: number;
  readonly #maxSendSize: number;
  /** Unanswered calls, oldest first: a reply's index is its call's position here. */
  readonly #outstanding: Call[] = [];
  /** Saved replies of a Go snapshot, delivered first. */
  #savedReplies: Uint8Array[] = [];
  #send: SendPacket | null = null;
  #abort: AbortRun | null = null;
  #stopped = false;

  constructor(settings: Settings, config: ServiceConfig, saved: Uint8Array | null) {
    this.#s = settings;
    this.#code = config.code;
    this.#maxSendSize = config.maxSendSize;
    if (saved !== null && saved.length > 0) this.#restore(saved);
  }

  // Gate's layout: uvarint n, n whole request packets, uvarint m, m reply packets.
  #restore(saved: Uint8Array): void {
    const r = new ByteReader(saved);
    const packets = (): Uint8Array[] => {
      const n = r.varint();
      const out: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const header = r.bytes(HEADER_SIZE);
        const size = packetSize(header);
        if (size < HEADER_SIZE || size > this.#maxSendSize) throw new SavedStateError('localhost saved packet size out of bounds');
        const p = new Uint8Array(size);
        p.set(header);
        p.set(r.bytes(size - HEADER_SIZE), HEADER_SIZE);
        out.push(p);
      }
      return out;
    };
    const requests = packets();
    this.#savedReplies = packets();
    if (r.remaining !== 0) throw new SavedStateError('trailing data in localhost service state');
    if (requests.length > 255) throw new SavedStateError('too many saved localhost requests');
    for (const packet of requests) {
      let idempotent = false;
      try {
        const req = decodeCall(packet.subarray(HEADER_SIZE));
        idempotent = req !== null && IDEMPOTENT.has(req.method === '' ? 'GET' : req.method);
      } catch {
        // Answered as before: the request is run again and fails the same way.
        idempotent = true;
      }
      this.#outstanding.push({ packet, running: false, ...(idempotent ? {} : { failWith: 502 }) });
    }
  }

  start(send: SendPacket, abort: AbortRun): void {
    this.#send = send;
    this.#abort = abort;
    for (const p of this.#savedReplies) send(p);
    this.#savedReplies = [];
    this.#schedule();
  }

  handle(packet: Uint8Array): Uint8Array | void {
    if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
    let req: LocalRequest | null;
    try {
      req = decodeCall(packet.subarray(HEADER_SIZE));
    } catch (e) {
      if (!(e instanceof FlatError)) throw e;
      req = null;
    }
    // Answered at once: index = the position this call would take.
    if (req === null) return this.#reply(new Uint8Array(0), this.#outstanding.length);
    if (this.#outstanding.length >= this.#s.maxOutstanding) {
      return this.#reply(encodeResponse({ statusCode: 503 }), this.#outstanding.length);
    }
    this.#outstanding.push({ packet: packet.slice(), running: false });
    this.#schedule();
  }

  #reply(content: Uint8Array, index: number): Uint8Array {
    const p = makePacket(HEADER_SIZE + content.length, this.#code, Domain.CALL, index);
    p.set(content, HEADER_SIZE);
    return p;
  }

  // Start waiting calls, oldest first, while there is room.
  #schedule(): void {
    if (this.#send === null || this.#stopped) return;
    let running = this.#outstanding.filter((c) => c.running).length;
    for (const call of this.#outstanding) {
      if (running >= this.#s.maxConcurrent) break;
      if (call.running) continue;
      call.running = true;
      running++;
      this.#run(call).then(
        (content) => this.#finish(call, content),
        (err: unknown) => this.#abort?.(err instanceof Error ? err : new Error(String(err))),
      );
    }
  }

  #finish(call: Call, content: Uint8Array): void {
    if (this.#stopped) return; // the call stays outstanding in the saved state
    const index = this.#outstanding.indexOf(call);
    if (index < 0) return;
    this.#outstanding.splice(index, 1);
    this.#send!(this.#reply(content, index));
    this.#schedule();
  }

  // The Response content for one call (never rejects for HTTP reasons).
  async #run(call: Call): Promise<Uint8Array> {
    if (call.failWith !== undefined) return encodeResponse({ statusCode: call.failWith });
    let req: LocalRequest | null;
    try {
      req = decodeCall(call.packet.subarray(HEADER_SIZE));
    } catch {
      req = null;
    }
    if (req === null) return new Uint8Array(0);
    const method = req.method === '' ? 'GET' : req.method;
    const where = resolveLocalUri(req.uri);
    if (where === null) return encodeResponse({ statusCode: 400 });
    if (!METHOD.test(method)) return encodeResponse({ statusCode: 502 });

    const controller = new AbortController();
    call.controller = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('localhost request timed out'));
    }, this.#s.timeout);
    call.timer = timer;
    // Gate's limit: the body and the content type together leave 100 bytes
    // of the packet for the rest of the Response (services.md §4.7).
    const room = this.#maxSendSize - RESPONSE_OVERHEAD;
    try {
      const res = await this.#s.transport({
        target: this.#s.target,
        method,
        path: where.path,
        ...(where.host !== undefined ? { host: where.host } : {}),
        ...(req.contentType !== '' ? { contentType: req.contentType } : {}),
        ...(req.body.length > 0 ? { body: req.body } : {}),
        maxBodySize: room,
        signal: controller.signal,
      });
      const status = Number.isInteger(res.status) && res.status >= 0 && res.status <= 0xffff ? res.status : 502;
      if (res.body.length > room - contentTypeSpace(res.contentType)) return encodeResponse({ statusCode: 502 });
      const content = encodeResponse({
        statusCode: status,
        ...(res.contentType ? { contentType: res.contentType } : {}),
        body: res.body,
      });
      return HEADER_SIZE + content.length <= this.#maxSendSize ? content : encodeResponse({ statusCode: 502 });
    } catch {
      return encodeResponse({ statusCode: timedOut ? 504 : 502 });
    } finally {
      clearTimeout(timer);
    }
  }

  shutdown(): Uint8Array {
    this.#stopped = true;
    for (const c of this.#outstanding) {
      clearTimeout(c.timer);
      c.controller?.abort(new Error('run ended'));
    }
    return this.#save();
  }

  /** Requests under way will be answered later: not idle. */
  hibernate(): { state: Uint8Array; idle: boolean } {
    return { state: this.#save(), idle: this.#outstanding.length === 0 && this.#savedReplies.length === 0 };
  }

  #save(): Uint8Array {
    if (this.#outstanding.length === 0 && this.#savedReplies.length === 0) return new Uint8Array(0);
    const w = new ByteWriter().varint(this.#outstanding.length);
    for (const c of this.#outstanding) w.bytes(c.packet);
    w.varint(this.#savedReplies.length);
    for (const p of this.#savedReplies) w.bytes(p);
    return w.finish();
  }
}
