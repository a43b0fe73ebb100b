// The caller of an HTTP request: its Authorization header verified, and the
// list requests' common checks, before the core sees a Caller.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Credentials } from '../api/auth.ts';
import { ownerCaller, type Caller, type ServerParts } from '../api/context.ts';
import { forwardedCredentials } from './forward.ts';
import { requireEmptyBody, requireJSON, requireNoContentType, sendEmpty } from './messages.ts';
import type { Query } from './query.ts';

/** Credentials verified per request: a request checked before it was routed is not checked again (a nonce is spent once). */
const verified = new WeakMap<IncomingMessage, Credentials | undefined>();

/**
 * Verify the request's Authorization header, if any (a present header is
 * always verified); a request passed on by another shard carries the
 * caller that shard verified.
 */
export function credentialsOf(parts: ServerParts, req: IncomingMessage): Credentials | undefined {
  if (verified.has(req)) return verified.get(req);
  const creds = forwardedCredentials(req) ?? parts.verifier.verifyHeaders(req.headersDistinct.authorization);
  verified.set(req, creds);
  return creds;
}

/**
 * A list request (POST of the collection, no content, JSON accepted) by an
 * authorized principal. Other methods (feature detection) are answered here
 * with an empty response, and the result is undefined.
 */
export async function listCaller(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query): Promise<Caller | undefined> {
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
