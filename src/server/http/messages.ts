// Request and response helpers shared by the handlers: content negotiation,
// error bodies, JSON, body reading, and stream adapters between node:http
// and the web streams the runtime's origin connections use.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, HttpError } from '../api/errors.ts';

export const JSON_TYPE = 'application/json; charset=utf-8';
export const TEXT_TYPE = 'text/plain; charset=utf-8';
export const WASM_TYPE = 'application/wasm';

function acceptList(req: IncomingMessage): string[] | undefined {
  const values = req.headersDistinct.accept;
  if (!values) return undefined;
  return values.flatMap((v) => v.split(',')).map((r) => r.split(';')[0].trim());
}

function accepts(req: IncomingMessage, type: string): boolean {
  const list = acceptList(req);
  if (!list) return true;
  const major = type.split('/')[0];
  return list.some((r) => r === '*/*' || r === type || r === `${major}/*`);
}

const acceptsText = (req: IncomingMessage): boolean => accepts(req, 'text/plain');
export const acceptsJSON = (req: IncomingMessage): boolean => accepts(req, 'application/json');
export const acceptsWasm = (req: IncomingMessage): boolean => accepts(req, 'application/wasm');

export function requireJSON(req: IncomingMessage): void {
  if (!acceptsJSON(req)) throw new HttpError(406, 'not acceptable');
}

/** The Content-Type without parameters; undefined when absent. */
export function contentType(req: IncomingMessage): string | undefined {
  const values = req.headersDistinct['content-type'];
  if (!values) return undefined;
  if (values.length > 1) throw badRequest('duplicate header: Content-Type');
  return values[0].split(';')[0].trim();
}

export function requireNoContentType(req: IncomingMessage): void {
  if (contentType(req) !== undefined) throw new HttpError(415, 'unsupported content type');
}

export function requireContentType(req: IncomingMessage, type: string): void {
  if (contentType(req) !== type) throw new HttpError(415, 'unsupported content type');
}

/** Declared body length; undefined when unknown (chunked). */
export function contentLength(req: IncomingMessage): number | undefined {
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) return undefined;
  const cl = req.headers['content-length'];
  if (cl === undefined) return 0;
  const n = Number(cl);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function requireEmptyBody(req: IncomingMessage): void {
  if (contentLength(req) !== 0) throw new HttpError(413, 'request content must be empty');
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(error.headers)) res.setHeader(k, v);
  const text = error.text;
  if (text && acceptsText(req)) {
    const body = `${text}\n`;
    res.writeHead(error.status, { 'Content-Type': TEXT_TYPE, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(error.status, { 'Content-Length': 0 });
    res.end();
  }
}

export function sendJSON(res: ServerResponse, value: unknown, status = 200, headers: Record<string, string> = {}): void {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  res.writeHead(status, { ...headers, 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/** Go's encoding/json with tab indentation and a newline, as Gate's info documents use. */
export function goJSON(value: unknown): string {
  return `${JSON.stringify(value, null, '\t')}\n`;
}

/** The answer to a body that does not arrive in time; the connection is closed after it. */
export function requestTimeout(): HttpError {
  return new HttpError(408, 'request timeout', { Connection: 'close' });
}

/**
 * Receive a request body within `timeoutMs` (408 after): `take` gets each
 * chunk and throws to refuse the body; resolves when the body has ended.
 * Memory grows with what arrives, never with what was announced.
 */
function receiveBody(req: IncomingMessage, timeoutMs: number, take: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onFail);
      req.off('error', onFail);
      if (error) {
        req.pause();
        reject(error);
      } else resolve();
    };
    const onData = (chunk: Buffer) => {
      try {
        take(chunk);
      } catch (error) {
        done(error as Error);
      }
    };
    const onEnd = () => done();
    const onFail = () => done(badRequest('content decode error'));
    const timer = setTimeout(() => done(requestTimeout()), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onFail);
    req.on('error', onFail);
  });
}

/** Read exactly `length` bytes of body (the upload was announced with that length) within `timeoutMs`. */
export async function readBody(req: IncomingMessage, length: number, timeoutMs: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let at = 0;
  await receiveBody(req, timeoutMs, (chunk) => {
    at += chunk.byteLength;
    if (at > length) throw badRequest('content decode error');
    chunks.push(chunk);
  });
  if (at !== length) throw badRequest('content decode error');
  return new Uint8Array(Buffer.concat(chunks, length));
}

/** Read a small body of unknown length within `timeoutMs`, refusing more than `max` bytes (413). */
export async function readSmallBody(req: IncomingMessage, max: number, timeoutMs: number): Promise<Uint8Array> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > max) throw new HttpError(413, 'request content too large');
  const chunks: Buffer[] = [];
  let total = 0;
  await receiveBody(req, timeoutMs, (chunk) => {
    total += chunk.byteLength;
    if (total > max) throw new HttpError(413, 'request content too large');
    chunks.push(chunk);
  });
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * The request body as a web stream that is read only when the program asks
 * for input (highWaterMark 0), so the body exerts backpressure on the client.
 * Cancelling the stream leaves the rest of the body unread, so that another
 * stream over the same request can take over (a call whose instance was
 * paused for a snapshot reconnects). `onRead` is told each time the program
 * asks for input.
 */
export function requestInput(req: IncomingMessage, onRead?: () => void): ReadableStream<Uint8Array> {
  let done = false;
  let detach: (() => void) | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.pause();
        if (req.readableEnded || req.destroyed) {
          done = true;
          controller.close();
        }
      },
      pull(controller) {
        onRead?.();
        if (done) return;
        // 'end' may have been emitted while nobody listened (after the last chunk).
        if (req.readableEnded || req.destroyed) {
          done = true;
          controller.close();
          return;
        }
        return new Promise<void>((resolve) => {
          const finish = (chunk?: Buffer) => {
            req.pause();
            detach?.();
            detach = undefined;
            if (done) return resolve();
            try {
              if (chunk) controller.enqueue(new Uint8Array(chunk));
              else {
                done = true;
                controller.close();
              }
            } catch {
              // cancelled meanwhile
            }
            resolve();
          };
          const onData = (chunk: Buffer) => finish(chunk);
          const onEnd = () => finish();
          req.on('data', onData);
          req.on('end', onEnd);
          req.on('close', onEnd);
          req.on('error', onEnd);
          detach = () => {
            req.off('data', onData);
            req.off('end', onEnd);
            req.off('close', onEnd);
            req.off('error', onEnd);
          };
          req.resume();
        });
      },
      cancel() {
        done = true;
        req.pause();
        detach?.();
        detach = undefined;
      },
    },
    { highWaterMark: 0 },
  );
}

/** A web stream writing to the response, every chunk sent at once, with backpressure. */
export function responseOutput(res: ServerResponse, onFirst?: () => void): WritableStream<Uint8Array> {
  let first = true;
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (first) {
        first = false;
        onFirst?.();
      }
      if (res.destroyed || res.writableEnded) throw new Error('client went away');
      if (res.write(chunk)) return;
      return new Promise<void>((resolve, reject) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', gone);
          resolve();
        };
        const gone = () => {
          res.off('drain', done);
          reject(new Error('client went away'));
        };
        res.on('drain', done);
        res.once('close', gone);
      });
    },
  });
}

/** Whether the client sent `Te: trailers`. */
export function wantsTrailers(req: IncomingMessage): boolean {
  return (req.headersDistinct.te ?? []).some((v) => v.split(',').some((t) => t.trim().toLowerCase() === 'trailers'));
}
