// The /gate-0/ URL tree (api.md §1–§2): path cleaning and directory
// redirects, routes and their methods (405 with Allow), OPTIONS, the Origin
// allow-list and CORS headers, then dispatch to the module and instance
// handlers. Every error becomes Gate's status plus one line of text.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError } from '../api/auth.ts';
import { isConsolePath, serveConsole } from './console.ts';
import type { ServerParts } from '../api/context.ts';
import { HttpError } from '../api/errors.ts';
import { acceptsJSON, requireJSON, sendEmpty, sendError, TEXT_TYPE } from './messages.ts';
import { handleInstance, handleInstanceList } from './instance-routes.ts';
import { handleModule, handleModuleList, handleSourceItem } from './module-routes.ts';
import { PermissionDenied } from '../api/policy.ts';
import { Query } from './query.ts';
import { credentialsOf } from './caller.ts';
import { clientAddress, forwardRequest, isForwarded } from './forward.ts';
import { instanceIdError } from '../api/ids.ts';
import { withRequestSource } from '../api/request-source.ts';

export const API_ROOT = '/gate-0/';
const CACHE_PUBLIC = 'public, max-age=3600';

/** One resolved route: which handler, its methods and CORS headers. */
export interface Route {
  name: 'info' | 'sources' | 'module-list' | 'module' | 'source-dir' | 'source-item' | 'instance-list' | 'instance' | 'metrics';
  methods: string[];
  /** Methods advertised in Allow (instance list hides POST). */
  advertised?: string[];
  allowHeaders?: string;
  exposeHeaders?: string;
  /** Path value: module key, instance id, or source rest. */
  value: string;
  source?: string;
}

const READ = ['GET', 'HEAD', 'OPTIONS'];
const READ_POST = ['GET', 'HEAD', 'OPTIONS', 'POST'];

export type RouteResult = Route | { redirect: string } | undefined;

/** Resolve a decoded, clean path. */
export function resolveRoute(parts: ServerParts, path: string): RouteResult {
  if (path === '/metrics' && parts.config.http.metrics) return { name: 'metrics', methods: ['GET', 'HEAD'], value: '' };
  if (path === '/gate-0') return { redirect: '/gate-0/' };
  if (!path.startsWith(API_ROOT)) return undefined;
  const rest = path.slice(API_ROOT.length);
  if (rest === '') return { name: 'info', methods: READ, value: '' };
  if (rest === 'module') return { redirect: '/gate-0/module/' };
  if (rest === 'instance') return { redirect: '/gate-0/instance/' };
  if (rest === 'module/') return { name: 'sources', methods: READ, value: '' };
  if (rest === 'instance/') {
    return { name: 'instance-list', methods: READ_POST, advertised: READ, allowHeaders: 'Authorization', value: '' };
  }
  if (rest.startsWith('instance/')) {
    return {
      name: 'instance',
      methods: READ_POST,
      allowHeaders: 'Authorization, Content-Type',
      exposeHeaders: 'Gate-Status',
      value: rest.slice('instance/'.length),
    };
  }
  if (!rest.startsWith('module/')) return undefined;
  const m = rest.slice('module/'.length);
  const slash = m.indexOf('/');
  const source = slash < 0 ? m : m.slice(0, slash);
  if (source !== 'sha256' && !parts.sources.has(source)) return undefined;
  if (slash < 0) return { redirect: `/gate-0/module/${source}/` };
  const value = m.slice(slash + 1);
  if (source === 'sha256') {
    if (value === '') return { name: 'module-list', methods: READ_POST, allowHeaders: 'Authorization', value };
    return {
      name: 'module',
      methods: ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'],
      allowHeaders: 'Authorization, Content-Type',
      exposeHeaders: 'Location, Gate-Instance, Gate-Status',
      value,
    };
  }
  if (value === '') return { name: 'source-dir', methods: READ, value, source };
  return {
    name: 'source-item',
    methods: READ_POST,
    allowHeaders: 'Authorization',
    exposeHeaders: 'Location, Gate-Instance, Gate-Status',
    value,
    source,
  };
}

/** The cleaned form of a path (Go's path.Clean, keeping a trailing slash). */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  let clean = `/${out.join('/')}`;
  if (p.endsWith('/') && clean !== '/') clean += '/';
  return clean;
}

/** The top-level request handler. */
export function createHandler(parts: ServerParts): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const began = performance.now();
    res.setHeader('Server', 'gate');
    let routeName = 'none';
    res.on('close', () => {
      const seconds = (performance.now() - began) / 1000;
      parts.metrics.requests.inc({ route: routeName, code: String(res.statusCode) });
      parts.metrics.requestSeconds.observe(seconds, { route: routeName });
      const level = parts.config.http.accesslog ? 'info' : 'debug';
      if (!parts.log.enabled(level)) return;
      parts.log.log(level, 'webserver: request handled', {
        method: req.method,
        path: req.url,
        status: res.statusCode,
        complete: res.writableFinished,
        seconds,
        remote: clientAddress(req),
      });
    });
    withRequestSource(clientAddress(req), () =>
      handle(parts, req, res, (name) => (routeName = name)).catch((error: unknown) => {
        respondError(parts, req, res, error);
      }),
    );
  };
}

/** Send an error the way Gate does; internal details only go to the log. */
function respondError(parts: ServerParts, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  let http: HttpError;
  if (error instanceof HttpError) {
    http = error;
    if (error instanceof AuthError) {
      parts.metrics.authFailures.inc({ type: error.failure });
      parts.log.event('FAIL_REQUEST', { fail: { type: error.failure }, path: req.url });
    } else if (error instanceof PermissionDenied) {
      parts.log.event('FAIL_REQUEST', { fail: { type: 'RESOURCE_DENIED' }, reason: error.reason });
    } else if (error.status >= 500 && error.status !== 501) {
      parts.log.event('FAIL_INTERNAL', { path: req.url, error: error.message });
    } else if (error.fail !== undefined) {
      parts.log.event('FAIL_REQUEST', { fail: { type: error.fail }, path: req.url, error: error.text });
    } else if (error.status === 403) {
      parts.log.event('FAIL_REQUEST', { fail: { type: 'CLIENT_DENIED' }, path: req.url, origin: req.headers.origin });
    } else if (error.status !== 404 && error.status !== 405) {
      // Malformed requests (query, headers, content); the router's own 404/405 answers log nothing, as Gate's.
      parts.log.event('FAIL_PROTOCOL', { path: req.url, error: error.text });
    }
  } else {
    parts.log.error('internal error', { method: req.method, path: req.url, error: (error as Error)?.stack ?? String(error) });
    parts.log.event('FAIL_INTERNAL', { path: req.url });
    http = new HttpError(500, 'internal error');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendError(req, res, http);
}

async function handle(parts: ServerParts, req: IncomingMessage, res: ServerResponse, name: (n: string) => void): Promise<void> {
  const raw = req.url ?? '/';
  const qmark = raw.indexOf('?');
  const rawPath = qmark < 0 ? raw : raw.slice(0, qmark);
  const rawQuery = qmark < 0 ? '' : raw.slice(qmark + 1);

  checkOrigin(parts, req);

  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'Bad Request');
  }
  const clean = cleanPath(path);
  if (clean !== path) {
    redirect(res, clean + (qmark < 0 ? '' : `?${rawQuery}`));
    return;
  }
  if (parts.config.http.console && isConsolePath(path)) {
    name('console');
    return serveConsole(req, res, path);
  }
  const route = resolveRoute(parts, path);
  if (!route) {
    const body = '404 page not found\n';
    res.writeHead(404, { 'Content-Type': TEXT_TYPE, 'Content-Length': body.length });
    res.end(body);
    return;
  }
  if ('redirect' in route) {
    redirect(res, route.redirect + (qmark < 0 ? '' : `?${rawQuery}`));
    return;
  }
  name(route.name);
  const method = req.method ?? 'GET';
  const allowed = [...route.methods, ...(route.methods.includes('GET') ? ['HEAD'] : [])];
  if (!allowed.includes(method)) {
    const allow = [...new Set(route.advertised ?? route.methods)].sort().join(', ');
    // Two 405s come from the API itself, with an empty body.
    if ((route.name === 'module-list' && method === 'PUT') || (route.name === 'source-dir' && method === 'POST')) {
      sendEmpty(res, 405, { Allow: allow });
      return;
    }
    const body = 'Method Not Allowed\n';
    res.writeHead(405, { Allow: allow, 'Content-Type': TEXT_TYPE, 'Content-Length': body.length });
    res.end(body);
    return;
  }
  if (route.name === 'metrics') {
    const body = parts.shards ? await parts.shards.metrics() : parts.metrics.render();
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.headers.origin !== undefined) corsHeaders(parts, req, res, route);
  if (method === 'OPTIONS') {
    sendEmpty(res, 200, { Allow: [...(route.advertised ?? route.methods)].sort().join(', ') });
    return;
  }
  if (route.name === 'instance' && (await passedOn(parts, req, res, route.value))) return;
  const query = new Query(rawQuery);
  switch (route.name) {
    case 'info':
      return apiInfo(parts, req, res, query);
    case 'sources':
      return sourceList(parts, req, res, query);
    case 'module-list':
      return handleModuleList(parts, req, res, query);
    case 'module':
      return handleModule(parts, req, res, query, route.value);
    case 'source-dir':
      sendEmpty(res);
      return;
    case 'source-item':
      return handleSourceItem(parts, req, res, query, parts.sources.get(route.source!)!, route.value);
    case 'instance-list':
      return handleInstanceList(parts, req, res, query);
    case 'instance':
      return handleInstance(parts, req, res, query, route.value);
  }
}

/**
 * With shards, a request about an instance of the caller that lives on
 * another shard goes there (once: a passed-on request is never passed on
 * again). Whatever is wrong with the request is answered here, as always.
 */
async function passedOn(parts: ServerParts, req: IncomingMessage, res: ServerResponse, id: string): Promise<boolean> {
  if (!parts.shards || isForwarded(req) || instanceIdError(id)) return false;
  let creds;
  try {
    creds = credentialsOf(parts, req);
  } catch {
    return false;
  }
  if (!creds || parts.instances.has(creds.principal.id, id)) return false;
  const shard = await parts.shards.locate(creds.principal.id, id);
  if (shard === null || shard === parts.shards.index) return false;
  await forwardRequest(req, res, parts.shards.peer(shard), creds);
  return true;
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(301, { Location: location, 'Content-Length': 0 });
  res.end();
}

/** Origin allow-list (api.md §2.6 step 1): 403 with an empty body. */
export function checkOrigin(parts: ServerParts, req: IncomingMessage): void {
  const allowed = parts.config.http.origins.filter((o) => o !== '');
  if (allowed.includes('*')) return;
  const origin = req.headers.origin;
  if (!origin) return;
  for (const token of origin.split(/\s+/).filter((t) => t !== '')) {
    if (!allowed.includes(token)) throw new HttpError(403, '');
  }
}

function corsHeaders(parts: ServerParts, req: IncomingMessage, res: ServerResponse, route: Route): void {
  const any = parts.config.http.origins.includes('*');
  res.setHeader('Access-Control-Allow-Origin', any ? '*' : (req.headers.origin ?? ''));
  res.setHeader('Access-Control-Allow-Methods', [...(route.advertised ?? route.methods)].sort().join(', '));
  res.setHeader('Access-Control-Max-Age', '86400');
  if (route.allowHeaders) res.setHeader('Access-Control-Allow-Headers', route.allowHeaders);
  if (route.exposeHeaders) res.setHeader('Access-Control-Expose-Headers', route.exposeHeaders);
}

function apiInfo(parts: ServerParts, req: IncomingMessage, res: ServerResponse, query: Query): void {
  const features = query.takeAll('feature');
  query.done();
  for (const f of features) {
    if (f !== 'scope' && f !== '*') throw new HttpError(501, 'unsupported feature', { 'Cache-Control': CACHE_PUBLIC });
  }
  if (features.length === 0 && !acceptsJSON(req)) {
    sendEmpty(res, 200, { 'Cache-Control': CACHE_PUBLIC });
    return;
  }
  requireJSON(req);
  const body = features.length > 0 ? parts.apiInfo.features : parts.apiInfo.plain;
  res.writeHead(200, { 'Cache-Control': CACHE_PUBLIC, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sourceList(parts: ServerParts, req: IncomingMessage, res: ServerResponse, query: Query): void {
  query.done();
  requireJSON(req);
  const names = ['sha256', ...parts.sources.keys()].sort();
  const body = `${JSON.stringify(names, null, '\t')}\n`;
  res.writeHead(200, { 'Cache-Control': CACHE_PUBLIC, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
