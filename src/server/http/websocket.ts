// Websocket variants of call and io (api.md §12): the handshake is accepted
// before authentication; the first client message (JSON, ≤ 4096 bytes)
// carries the credentials, the server replies with a JSON text message, then
// binary messages carry program I/O, a text message hints that the program
// wants input, and a final status message precedes close 1000. Errors are
// close frames: 1008 for what would be a 4xx, 1011 for a 5xx.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { statusToJSON, type Status } from '../../runtime/instance/status.ts';
import { AuthError, type Credentials } from '../api/auth.ts';
import { anyCaller, ownerCaller, type Caller, type ServerParts } from '../api/context.ts';
import { badRequest, HttpError, notFound, unsupportedAction } from '../api/errors.ts';
import type { ServerInstance } from '../api/instances.ts';
import { MODULE_PATH } from './module-routes.ts';
import { createInstance, extantModule, pinModule, sourceModule, uploadModule, type Program } from '../api/operations.ts';
import { instanceIdError, moduleKeyError } from '../api/ids.ts';
import { Query } from './query.ts';
import { withRequestSource } from '../api/request-source.ts';
import { clientAddress, forwardedCredentials, forwardWebSocket } from './forward.ts';
import { checkOrigin, cleanPath, resolveRoute } from './router.ts';

const FIRST_MESSAGE_MAX = 4096;
/** Largest message of program input (the module of a call may be larger: up to principal.maxmodulesize). */
const INPUT_MESSAGE_MAX = 1024 * 1024;
/** Input bytes a connection may have waiting for the program before its socket is paused. */
const INBOX_BYTES = 1024 * 1024;
const WASM = 'application/wasm';

type Target =
  | { kind: 'call'; key?: string; source?: string; rest?: string; pin: boolean; tags: string[]; fn?: string; instanceTags: string[] }
  | { kind: 'io'; id: string };

/** Close with an error: 1008 for client errors, 1011 for server errors; the reason fits a close frame. */
class WsClose extends Error {
  readonly code: number;
  constructor(code: number, reason: string) {
    super(reason);
    this.code = code;
  }
}

export function createUpgradeHandler(parts: ServerParts): {
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  close: () => void;
} {
  // A call may send its module in one message; io carries only input.
  const calls = new WebSocketServer({ noServer: true, maxPayload: parts.config.principal.maxmodulesize + FIRST_MESSAGE_MAX });
  const io = new WebSocketServer({ noServer: true, maxPayload: INPUT_MESSAGE_MAX });
  return {
    upgrade(req, socket, head) {
      let target: Target;
      try {
        target = parseTarget(parts, req);
      } catch (error) {
        rejectUpgrade(socket, error);
        return;
      }
      (target.kind === 'io' ? io : calls).handleUpgrade(req, socket, head, (ws) => {
        const began = performance.now();
        withRequestSource(clientAddress(req), () => session(parts, ws, target, req))
          .catch((error: unknown) => closeWithError(parts, ws, error))
          .finally(() => {
            if (target.kind === 'call') {
              parts.metrics.calls.inc({ transport: 'websocket' });
              parts.metrics.callSeconds.observe((performance.now() - began) / 1000, { transport: 'websocket' });
            }
          });
      });
    },
    close() {
      for (const server of [calls, io]) {
        for (const ws of server.clients) ws.terminate();
        server.close();
      }
    },
  };
}

/** Route and query checks happen before the handshake, as plain HTTP errors. */
function parseTarget(parts: ServerParts, req: IncomingMessage): Target {
  checkOrigin(parts, req);
  const raw = req.url ?? '/';
  const qmark = raw.indexOf('?');
  let path: string;
  try {
    path = decodeURIComponent(qmark < 0 ? raw : raw.slice(0, qmark));
  } catch {
    throw badRequest('Bad Request');
  }
  const route = path === cleanPath(path) ? resolveRoute(parts, path) : undefined;
  if (!route || 'redirect' in route) throw new HttpError(404, '404 page not found');
  if (req.method !== 'GET') throw new HttpError(405, 'Method Not Allowed');
  const q = new Query(qmark < 0 ? '' : raw.slice(qmark + 1));
  if (route.name === 'instance') {
    const problem = instanceIdError(route.value);
    if (problem) throw notFound(problem);
    const actions = q.takeAll('action');
    if (actions.length === 0) throw badRequest('missing query parameter: action');
    if (actions.length > 1 || actions[0] !== 'io') throw unsupportedAction();
    q.done();
    return { kind: 'io', id: route.value };
  }
  if (route.name !== 'module' && route.name !== 'source-item') throw badRequest('Bad Request');
  if (route.name === 'module') {
    const problem = moduleKeyError(route.value);
    if (problem) throw notFound(problem);
  }
  const pin = q.takeValue('action', 'pin');
  const tags = pin ? q.takeAll('module-tag') : [];
  const actions = q.takeAll('action');
  if (actions.length === 0) throw badRequest('missing query parameter: action');
  if (actions.length > 1) throw badRequest('duplicate query parameter');
  if (actions[0] !== 'call') throw unsupportedAction();
  const fn = q.takeFunction();
  const instanceTags = q.takeAll('instance-tag');
  q.takeLog();
  q.done();
  return route.name === 'module'
    ? { kind: 'call', key: route.value, pin, tags, fn, instanceTags }
    : { kind: 'call', source: route.source, rest: route.value, pin, tags, fn, instanceTags };
}

function rejectUpgrade(socket: Duplex, error: unknown): void {
  const status = error instanceof HttpError ? error.status : 500;
  const text = error instanceof HttpError ? error.text : 'internal error';
  const body = text ? `${text}\n` : '';
  const extra = error instanceof HttpError ? Object.entries(error.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') : '';
  socket.end(
    `HTTP/1.1 ${status} ${statusText(status)}\r\nServer: gate\r\nConnection: close\r\n${extra}` +
      (body ? `Content-Type: text/plain; charset=utf-8\r\n` : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function statusText(status: number): string {
  const texts: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 501: 'Not Implemented' };
  return texts[status] ?? 'Error';
}

function closeWithError(parts: ServerParts, ws: WebSocket, error: unknown): void {
  let code = 1011;
  let reason = 'internal error';
  if (error instanceof WsClose) {
    code = error.code;
    reason = error.message;
  } else if (error instanceof HttpError) {
    code = error.status >= 500 && error.status !== 501 ? 1011 : 1008;
    reason = error.text || (code === 1011 ? 'internal error' : 'unknown error');
    if (error instanceof AuthError) parts.metrics.authFailures.inc({ type: error.failure });
  } else {
    parts.log.error('websocket internal error', { error: (error as Error)?.stack ?? String(error) });
  }
  if (ws.readyState === ws.OPEN) ws.close(code, truncateReason(reason));
}

/** A close reason is at most 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/**
 * Messages of one connection, in order, as a pull-based queue. Its socket is
 * paused while INBOX_BYTES wait here, so a client that sends faster than the
 * program reads is held back by TCP instead of filling memory.
 */
class Inbox {
  private readonly queue: { data: Buffer; binary: boolean }[] = [];
  private queued = 0;
  /** Past the first messages (and a call's module) only input comes, in messages of INPUT_MESSAGE_MAX at most. */
  private inputOnly = false;
  private waiting: ((m: { data: Buffer; binary: boolean } | null) => void) | undefined;
  private closed = false;
  private readonly ws: WebSocket;

  private readonly onMessage: (data: RawData, binary: boolean) => void;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.onMessage = (data: RawData, binary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (this.inputOnly && buf.byteLength > INPUT_MESSAGE_MAX) {
        ws.close(1009, 'message too big');
        return;
      }
      const m = { data: buf, binary };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else {
        this.queue.push(m);
        this.queued += buf.byteLength;
        if (this.queued >= INBOX_BYTES) ws.pause();
      }
    };
    ws.on('message', this.onMessage);
    ws.on('close', () => this.end());
    ws.on('error', () => this.end());
  }

  /** Stop taking messages (they are relayed elsewhere): those queued so far. */
  detach(): { data: Buffer; binary: boolean }[] {
    this.ws.off('message', this.onMessage);
    if (this.ws.isPaused) this.ws.resume();
    this.queued = 0;
    return this.queue.splice(0);
  }

  /** From now on, messages are program input. */
  input(): void {
    this.inputOnly = true;
    if (this.queue.some((m) => m.data.byteLength > INPUT_MESSAGE_MAX)) this.ws.close(1009, 'message too big');
  }

  private end(): void {
    this.closed = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(null);
    }
  }

  /** The next message, or null when the connection has closed; rejects after `timeoutMs` when given. */
  next(timeoutMs?: number): Promise<{ data: Buffer; binary: boolean } | null> {
    const m = this.queue.shift();
    if (m) this.queued -= m.data.byteLength;
    if (this.queued < INBOX_BYTES / 4 && this.ws.isPaused) this.ws.resume();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.waiting = undefined;
        reject(new WsClose(1008, 'request timeout'));
      }, timeoutMs);
      this.waiting = (value) => {
        clearTimeout(timer);
        resolve(value);
      };
    });
  }
}

async function firstMessage(inbox: Inbox, timeoutMs: number): Promise<Record<string, unknown>> {
  const m = await inbox.next(timeoutMs);
  if (!m) throw new WsClose(1000, '');
  if (m.data.byteLength > FIRST_MESSAGE_MAX) throw new WsClose(1009, 'message too big');
  try {
    const value: unknown = JSON.parse(m.data.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // dropped below
  }
  throw new WsClose(-1, 'unparseable first message');
}

function credentialsFrom(parts: ServerParts, value: unknown, required: boolean): Credentials | undefined {
  const s = typeof value === 'string' ? value : '';
  if (s === '') {
    if (required) throw new AuthError(parts.verifier.realm, 'AUTH_INVALID', 'invalid_request', 'invalid_request');
    return undefined;
  }
  return parts.verifier.verifyBearer(s);
}

async function session(parts: ServerParts, ws: WebSocket, target: Target, req: IncomingMessage): Promise<void> {
  const inbox = new Inbox(ws);
  let first: Record<string, unknown>;
  try {
    first = await firstMessage(inbox, parts.config.http.bodytimeout * 1000);
  } catch (error) {
    if (error instanceof WsClose && error.code === -1) {
      ws.terminate();
      return;
    }
    throw error;
  }
  if (target.kind === 'io') {
    inbox.input();
    return ioSession(parts, ws, inbox, target.id, first, req);
  }
  return callSession(parts, ws, inbox, target, first);
}

async function callSession(parts: ServerParts, ws: WebSocket, inbox: Inbox, t: Extract<Target, { kind: 'call' }>, first: Record<string, unknown>): Promise<void> {
  const type = typeof first.content_type === 'string' ? first.content_type : '';
  if (type !== '' && type !== WASM) throw new WsClose(1008, 'unsupported content type');
  const wasm = type === WASM;
  if (wasm && t.source !== undefined) throw new WsClose(1008, 'content not supported by action');

  let caller: Caller;
  let program: Program;
  if (wasm) {
    const creds = credentialsFrom(parts, first.authorization, t.pin);
    caller = t.pin ? await ownerCaller(parts, creds, 'program-instance') : await anyCaller(parts, creds, 'program-instance');
    const length = typeof first.content_length === 'number' ? first.content_length : -1;
    if (length < 0 || !Number.isSafeInteger(length)) throw new HttpError(411, 'length required');
    program = await uploadModule(parts, caller, t.key!, length, async () => {
      const m = await inbox.next(parts.config.http.bodytimeout * 1000);
      if (!m) throw new WsClose(1000, '');
      if (!m.binary) throw new WsClose(1003, 'module must be sent as a binary message');
      if (m.data.byteLength !== length) throw badRequest('content decode error');
      return new Uint8Array(m.data);
    }, t.pin);
  } else if (t.source !== undefined) {
    const creds = credentialsFrom(parts, first.authorization, t.pin);
    caller = t.pin ? await ownerCaller(parts, creds, 'program-instance') : await anyCaller(parts, creds, 'program-instance');
    program = await sourceModule(parts, caller, parts.sources.get(t.source)!, t.rest!);
  } else {
    const creds = credentialsFrom(parts, first.authorization, false);
    if (!creds) throw parts.verifier.anonymous();
    caller = await ownerCaller(parts, creds, 'instance');
    program = await extantModule(parts, caller, t.key!);
  }
  if (t.pin) await pinModule(parts, caller, program.hash, t.tags, program.bytes);
  inbox.input();

  const inst = await createInstance(parts, caller, program, { fn: t.fn, tags: t.instanceTags, transient: true });
  const abort = new AbortController();
  ws.on('close', () => abort.abort(new Error('client went away')));
  try {
    const reply: Record<string, string> = {};
    if (caller.principal !== undefined) {
      if (t.pin) reply.location = MODULE_PATH + program.hash;
      reply.instance = inst.id;
    }
    ws.send(`${JSON.stringify(reply)}\n`);
    const hint = { sent: false };
    await parts.instances.connectSpanningPauses(inst, () => [inputStream(ws, inbox, hint), outputStream(ws)], abort.signal);
    const status = await parts.instances.wait(inst, abort.signal);
    finish(ws, status);
  } finally {
    await parts.instances.endCall(inst);
  }
}

async function ioSession(parts: ServerParts, ws: WebSocket, inbox: Inbox, id: string, first: Record<string, unknown>, req: IncomingMessage): Promise<void> {
  const forwarded = forwardedCredentials(req);
  const creds = forwarded ?? credentialsFrom(parts, first.authorization, true);
  // An instance on another shard is served there (see forward.ts).
  if (parts.shards && !forwarded && creds && !parts.instances.has(creds.principal.id, id)) {
    const shard = await parts.shards.locate(creds.principal.id, id);
    if (shard !== null && shard !== parts.shards.index) {
      await forwardWebSocket(ws, req.url ?? '/', parts.shards.peer(shard), creds, clientAddress(req), first, inbox.detach());
      return;
    }
  }
  const caller = await ownerCaller(parts, creds, 'authorize');
  const inst: ServerInstance = await parts.instances.get(caller.principal!, id);
  const abort = new AbortController();
  ws.on('close', () => abort.abort(new Error('client went away')));
  const hint = { sent: false };
  const joined = await parts.instances.connectSpanningPauses(inst, () => [inputStream(ws, inbox, hint), outputStream(ws)], abort.signal, () => {
    parts.instances.event('INSTANCE_CONNECT', inst, { transport: 'websocket' });
    ws.send(pretty({ connected: true }));
  });
  if (!joined) {
    if (ws.readyState === ws.OPEN) ws.send(pretty({ connected: false }));
    throw new WsClose(1008, 'not connected');
  }
  parts.instances.event('INSTANCE_DISCONNECT', inst, { transport: 'websocket', ...(abort.signal.aborted ? { error: 'client went away' } : {}) });
  finish(ws, inst.status);
}

function finish(ws: WebSocket, status: Status): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(pretty({ status: connectionStatus(status) }));
  ws.close(1000);
}

/** ConnectionStatus: `result` only for HALTED and TERMINATED (api.md §10.1). */
function connectionStatus(status: Status): Record<string, string | number> {
  const out = statusToJSON(status);
  if (status.state !== 'HALTED' && status.state !== 'TERMINATED') delete out.result;
  return out;
}

function pretty(value: unknown): string {
  return `${JSON.stringify(value, null, '\t')}\n`;
}

/** Client messages as program input; the first read sends the input hint. */
function inputStream(ws: WebSocket, inbox: Inbox, hint: { sent: boolean }): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!hint.sent) {
          hint.sent = true;
          if (ws.readyState === ws.OPEN) ws.send(pretty({ status: { state: 'RUNNING' }, input: true }));
        }
        for (;;) {
          const m = await inbox.next();
          if (!m) {
            controller.close();
            return;
          }
          if (m.data.byteLength === 0) continue;
          controller.enqueue(new Uint8Array(m.data));
          return;
        }
      },
    },
    { highWaterMark: 0 },
  );
}

function outputStream(ws: WebSocket): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (ws.readyState !== ws.OPEN) throw new Error('client went away');
      return new Promise<void>((resolve, reject) => ws.send(chunk, { binary: true }, (error) => (error ? reject(error) : resolve())));
    },
  });
}
