// Program I/O over plain HTTP: the request body streams into the program's
// origin connection while its output streams back as the response body, and
// the final status follows in the Gate-Status trailer (api.md §6.4, §9.3).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { statusToJSON } from '../../runtime/instance/status.ts';
import type { ServerParts } from '../api/context.ts';
import { HttpError } from '../api/errors.ts';
import { requestInput, responseOutput, wantsTrailers } from './messages.ts';
import type { ServerInstance } from '../api/instances.ts';

/** Milliseconds a call's response headers may wait for its output or its end. */
const HEADERS_WITHIN = 20;

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function clientGone(res: ServerResponse): AbortSignal {
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort(new Error('client went away'));
  });
  return abort.signal;
}

export interface CallResponse {
  status: number;
  headers: Record<string, string>;
  /** The request body is program input (false when it was the module). */
  input: boolean;
}

/** Serve a call: stream I/O, wait for the instance to stop, send the status; the instance is killed at the end. */
export async function serveCall(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  inst: ServerInstance,
  r: CallResponse,
): Promise<void> {
  const began = performance.now();
  const trailers = wantsTrailers(req);
  const signal = clientGone(res);
  // A short call is answered in one write: headers, output and status wait in the corked socket for its end,
  // or at most HEADERS_WITHIN ms (or until the program reads input: a client may wait for the headers).
  const socket = res.socket;
  socket?.cork();
  let corked = socket !== null;
  const flush = () => {
    clearTimeout(timer);
    if (!corked) return;
    corked = false;
    // (headersSent only says that the headers are ready; flushHeaders() sends them unless they went.)
    if (!res.destroyed) res.flushHeaders();
    socket?.uncork();
  };
  const timer = setTimeout(flush, HEADERS_WITHIN);
  try {
    const headers = { ...r.headers };
    if (trailers) headers.Trailer = 'Gate-Status';
    res.writeHead(r.status, headers);
    await parts.instances.connectSpanningPauses(inst, () => [r.input ? requestInput(req, flush) : null, responseOutput(res)], signal);
    const status = await parts.instances.wait(inst, signal);
    if (trailers) res.addTrailers({ 'Gate-Status': JSON.stringify(statusToJSON(status)) });
    if (!res.destroyed) res.end();
    // Input the program did not read is discarded, so the client can finish sending.
    req.resume();
  } finally {
    clearTimeout(timer);
    if (corked) {
      corked = false;
      socket?.uncork();
    }
    await parts.instances.endCall(inst);
    parts.metrics.calls.inc({ transport: 'http' });
    parts.metrics.callSeconds.observe((performance.now() - began) / 1000, { transport: 'http' });
  }
}

/** Serve `io`: wait for the program to accept, then stream; 409 (empty) if it cannot connect. */
export async function serveIO(parts: ServerParts, req: IncomingMessage, res: ServerResponse, inst: ServerInstance): Promise<void> {
  const trailers = wantsTrailers(req);
  const signal = clientGone(res);
  const joined = await parts.instances.connectSpanningPauses(inst, () => [requestInput(req), responseOutput(res)], signal, () => {
    parts.instances.event('INSTANCE_CONNECT', inst, { transport: 'http' });
    res.writeHead(200, trailers ? { Trailer: 'Gate-Status' } : {});
    res.flushHeaders();
  });
  if (!joined) throw new HttpError(409, '');
  parts.instances.event('INSTANCE_DISCONNECT', inst, { transport: 'http', ...(signal.aborted ? { error: 'client went away' } : {}) });
  if (trailers) res.addTrailers({ 'Gate-Status': JSON.stringify(statusToJSON(inst.status)) });
  if (!res.destroyed) res.end();
  req.resume();
}
