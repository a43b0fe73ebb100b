// Requests passed between the shards of one server (src/server/shards/): a
// request about an instance that lives on another shard goes there over
// that shard's Unix socket, with the caller this shard has verified (a
// token's nonce is spent once) and the client's address. Only connections
// on those sockets (mode 0600, in a directory of the server's own) are
// trusted to say who the caller is; the same headers from a client are
// ignored.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { b64urlDecode, LOCAL_PRINCIPAL, type Credentials } from '../api/auth.ts';

const PRINCIPAL = 'gate-forwarded-principal';
const SCOPE = 'gate-forwarded-scope';
const SOURCE = 'gate-forwarded-for';

/** Sockets of passed-on requests (from another shard of this server). */
const trusted = new WeakSet<Socket>();

/** A connection on a shard's own socket: its requests come from another shard. */
export function trustConnection(socket: Socket): void {
  trusted.add(socket);
}

function isTrusted(req: IncomingMessage): boolean {
  return trusted.has(req.socket);
}

/** The caller another shard verified, for a request it passed on. */
export function forwardedCredentials(req: IncomingMessage): Credentials | undefined {
  if (!isTrusted(req)) return undefined;
  const id = req.headers[PRINCIPAL];
  if (typeof id !== 'string') return undefined;
  const key = id === LOCAL_PRINCIPAL ? new Uint8Array(32) : (b64urlDecode(id.slice('ed25519:'.length)) ?? new Uint8Array(32));
  const scope = req.headers[SCOPE];
  return { principal: { id, key }, scope: typeof scope === 'string' && scope !== '' ? scope.split(' ') : [] };
}

/** Whether the request was passed on by another shard (it is never passed on again). */
export function isForwarded(req: IncomingMessage): boolean {
  return isTrusted(req);
}

/** The client's address: the socket's, or for a passed-on request the one the other shard saw. */
export function clientAddress(req: IncomingMessage): string | undefined {
  const told = isTrusted(req) ? req.headers[SOURCE] : undefined;
  return typeof told === 'string' ? told : req.socket.remoteAddress;
}

function identityHeaders(creds: Credentials, source: string | undefined): Record<string, string> {
  const out: Record<string, string> = { [PRINCIPAL]: creds.principal.id, [SCOPE]: creds.scope.join(' ') };
  if (source !== undefined) out[SOURCE] = source;
  return out;
}

/** Headers that belong to one connection, not to the request or response. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'authorization', PRINCIPAL, SCOPE, SOURCE]);

function endToEnd(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/**
 * Pass a request on to the shard listening on `socketPath` and relay its
 * answer: the body both ways as it comes, trailers (Gate-Status) included.
 */
export function forwardRequest(req: IncomingMessage, res: ServerResponse, socketPath: string, creds: Credentials): Promise<void> {
  return new Promise((resolve) => {
    const headers: Record<string, string | string[]> = { ...endToEnd(req.headers), ...identityHeaders(creds, clientAddress(req)) };
    const te = req.headers.te;
    if (te !== undefined) headers.te = te;
    const out = http.request({ socketPath, method: req.method, path: req.url, headers });
    const done = () => resolve();
    out.on('response', (answer) => {
      const head = endToEnd(answer.headers);
      if (answer.headers.trailer !== undefined) head.trailer = answer.headers.trailer;
      res.writeHead(answer.statusCode ?? 502, head);
      // A streamed answer's headers go on as they came: the other shard sent them when the client had to see them (io, a call
      // whose program reads input), and a client such as `gate repl` sends nothing before it has them.
      if (answer.headers['content-length'] === undefined) res.flushHeaders();
      answer.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          answer.pause();
          res.once('drain', () => answer.resume());
        }
      });
      answer.on('end', () => {
        if (Object.keys(answer.trailers).length > 0) res.addTrailers(answer.trailers as Record<string, string>);
        res.end();
        done();
      });
      answer.on('error', () => {
        res.destroy();
        done();
      });
    });
    out.on('error', () => {
      if (!res.headersSent) {
        const body = 'instance is not available\n';
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1' });
        res.end(body);
      } else {
        res.destroy();
      }
      done();
    });
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
      done();
    });
    // The other shard sees the request now, not when the client sends its first body bytes (io may send none for a while).
    out.flushHeaders();
    req.pipe(out);
  });
}

/** Bytes one direction may have waiting in a relay before its source is paused. */
const RELAY_BUFFER = 1024 * 1024;

/** A websocket message as a relay passes it. */
export interface RelayedMessage {
  data: Buffer;
  binary: boolean;
}

/**
 * Relay a websocket whose first message this shard has taken (`first`,
 * sent on without its credentials, then the messages that came after it,
 * `queued`) to the shard listening on `socketPath`, which answers as if
 * the client were its own.
 */
export function forwardWebSocket(
  client: WebSocket,
  path: string,
  socketPath: string,
  creds: Credentials,
  source: string | undefined,
  first: Record<string, unknown>,
  queued: RelayedMessage[],
): Promise<void> {
  return new Promise((resolve) => {
    const inner = new WebSocket(`ws+unix://${socketPath}:${path}`, { headers: identityHeaders(creds, source), perMessageDeflate: false, maxPayload: 0 });
    const { authorization: _omitted, ...rest } = first;
    const waiting: RelayedMessage[] = [{ data: Buffer.from(JSON.stringify(rest)), binary: false }, ...queued];
    const send = (from: WebSocket, to: WebSocket, m: RelayedMessage) => {
      to.send(m.data, { binary: m.binary }, () => {
        if (to.bufferedAmount < RELAY_BUFFER / 4 && from.isPaused) from.resume();
      });
      if (to.bufferedAmount > RELAY_BUFFER) from.pause();
    };
    client.on('message', (data: RawData, binary: boolean) => {
      const m = { data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer), binary };
      if (inner.readyState === WebSocket.OPEN) send(client, inner, m);
      else waiting.push(m);
    });
    inner.on('message', (data: RawData, binary: boolean) => {
      if (client.readyState !== WebSocket.OPEN) return;
      send(inner, client, { data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer), binary });
    });
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      resolve();
    };
    inner.on('open', () => {
      for (const m of waiting.splice(0)) send(client, inner, m);
    });
    inner.on('close', (code, reason) => {
      if (client.readyState === WebSocket.OPEN) client.close(code === 1005 || code === 1006 ? 1011 : code, reason);
      finish();
    });
    inner.on('error', () => {
      if (client.readyState === WebSocket.OPEN) client.close(1011, 'instance is not available');
      finish();
    });
    client.on('close', () => {
      if (inner.readyState === WebSocket.OPEN || inner.readyState === WebSocket.CONNECTING) inner.terminate();
      finish();
    });
  });
}
