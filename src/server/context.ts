// Everything a request handler needs, assembled once by startServer(), and
// the caller of a request: credentials (or none), principal id and limits.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Credentials, Verifier } from './auth.ts';
import type { Config, Limits } from './config.ts';
import type { Executor } from './executor.ts';
import type { Instances } from './instances.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { Modules } from './modules.ts';
import type { NewcomerLimiter } from './newcomers.ts';
import type { Operation, Policy } from './policy.ts';
import type { Source } from './sources.ts';
import type { Inventory } from './store/inventory.ts';
import { requireEmptyBody, requireJSON, requireNoContentType, sendEmpty } from './http.ts';
import type { Query } from './query.ts';
import { requestSource } from './request-source.ts';

export interface ServerParts {
  readonly config: Config;
  /** Modules, pins and instance records: this server's own, or a cluster's shared ones. */
  readonly inventory: Inventory;
  readonly modules: Modules;
  readonly instances: Instances;
  readonly executor: Executor;
  readonly verifier: Verifier;
  readonly policy: Policy;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Configured module sources by name. */
  readonly sources: Map<string, Source>;
  /** API document bodies, computed once (api.md §3). */
  readonly apiInfo: { plain: string; features: string };
  /** New principals per source address (access.newprincipals). */
  readonly newcomers: NewcomerLimiter;
}

export interface Caller {
  readonly creds: Credentials | undefined;
  /** Principal id; undefined for anonymous callers. */
  readonly principal: string | undefined;
  readonly limits: Limits;
  readonly scope: string[];
}

/** Verify the request's Authorization header, if any (a present header is always verified). */
export function credentialsOf(parts: ServerParts, req: IncomingMessage): Credentials | undefined {
  return parts.verifier.verifyHeaders(req.headersDistinct.authorization);
}

/** Authorize an operation that needs a principal: absent credentials are a 401. */
export function ownerCaller(parts: ServerParts, creds: Credentials | undefined, op: Operation): Caller {
  if (!creds) throw parts.verifier.missing();
  parts.policy.check(op, creds, () => parts.verifier.missing());
  return callerOf(parts, creds);
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

/** Authorize an operation that anonymous callers may do when the policy admits them. */
export function anyCaller(parts: ServerParts, creds: Credentials | undefined, op: Operation): Caller {
  parts.policy.check(op, creds, () => parts.verifier.missing());
  return callerOf(parts, creds);
}

function callerOf(parts: ServerParts, creds: Credentials | undefined): Caller {
  if (creds) parts.newcomers.admit(creds.principal.id, requestSource());
  return {
    creds,
    principal: creds?.principal.id,
    limits: parts.policy.limits(creds),
    scope: creds?.scope ?? [],
  };
}
