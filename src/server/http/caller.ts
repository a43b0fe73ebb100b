// The caller of an HTTP request: its Authorization header verified, and the
// list requests' common checks, before the core sees a Caller.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Credentials } from '../api/auth.ts';
import { ownerCaller, type Caller, type ServerParts } from '../api/context.ts';
import { requireEmptyBody, requireJSON, requireNoContentType, sendEmpty } from './messages.ts';
import type { Query } from './query.ts';

/** Verify the request's Authorization header, if any (a present header is always verified). */
export function credentialsOf(parts: ServerParts, req: IncomingMessage): Credentials | undefined {
  return parts.verifier.verifyHeaders(req.headersDistinct.authorization);
}

/**
 * A list request (POST of the collection, no content, JSON accepted) by an
 * authorized principal. Other methods (feature detection) are answered here
 * with an empty response, and the result is undefined.
 */
export function listCaller(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query): Caller | undefined {
  if (req.method !== 'POST') {
    sendEmpty(res);
    return undefined;
  }
  q.done();
  requireNoContentType(req);
  requireEmptyBody(req);
  requireJSON(req);
  return ownerCaller(parts, credentialsOf(parts, req), 'authorize');
}
