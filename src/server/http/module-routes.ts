// Module routes (api.md §5–§7): the caller's pin list, one known module by
// its SHA-256 (download, upload+pin, info, pin, unpin, call, launch), and
// modules named by a configured source.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { anyCaller, ownerCaller, type Caller, type ServerParts } from '../api/context.ts';
import { credentialsOf, listCaller } from './caller.ts';
import { badRequest, HttpError, notFound, unsupportedAction } from '../api/errors.ts';
import {
  acceptsWasm,
  contentLength,
  contentType,
  readBody,
  requireEmptyBody,
  requireJSON,
  requireNoContentType,
  sendEmpty,
  sendJSON,
  WASM_TYPE,
} from './messages.ts';
import {
  createInstance,
  extantModule,
  pinExtant,
  pinModule,
  sourceModule,
  unpinModule,
  uploadModule,
  type Program,
} from '../api/operations.ts';
import { serveCall } from './program-io.ts';
import { instanceIdError, moduleKeyError } from '../api/ids.ts';
import { Query } from './query.ts';
import type { Source } from '../api/sources.ts';

export const MODULE_PATH = '/gate-0/module/sha256/';

/** Parameters of a call or launch, taken from the query. */
interface RunParams {
  fn?: string;
  id?: string;
  tags: string[];
}

function takeRunParams(q: Query, launch: boolean): RunParams {
  const fn = q.takeFunction();
  let id: string | undefined;
  if (launch) {
    id = q.takeOne('instance');
    if (id !== undefined) {
      const problem = instanceIdError(id);
      if (problem) throw badRequest(problem);
    }
  }
  const tags = q.takeAll('instance-tag');
  q.takeLog();
  q.done();
  return { fn, id, tags };
}

/** The one remaining action, if any; two or more is a 400. */
function remainingAction(q: Query): string | undefined {
  const actions = q.takeAll('action');
  if (actions.length > 1) throw badRequest('duplicate query parameter');
  return actions[0];
}

/** Exactly the declared Content-Length of an upload (411 when unknown). */
function uploadLength(req: IncomingMessage): number {
  const length = contentLength(req);
  if (length === undefined) throw new HttpError(411, 'length required');
  return length;
}

export async function handleModuleList(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query): Promise<void> {
  const caller = await listCaller(parts, req, res, q);
  if (!caller) return;
  const pins = await parts.inventory.pins(caller.principal!);
  parts.metrics.events.inc({ type: 'MODULE_LIST' });
  sendJSON(res, pins.length === 0 ? {} : { modules: pins.map(moduleInfo) });
}

function moduleInfo(p: { module: string; tags: string[] }): Record<string, unknown> {
  return p.tags.length > 0 ? { module: p.module, tags: p.tags } : { module: p.module };
}

export async function handleModule(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query, key: string): Promise<void> {
  const problem = moduleKeyError(key);
  if (problem) throw notFound(problem);
  switch (req.method) {
    case 'GET':
    case 'HEAD':
      return getModule(parts, req, res, q, key);
    case 'PUT':
      return putModule(parts, req, res, q, key);
    default:
      return postModule(parts, req, res, q, key);
  }
}

async function getModule(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query, key: string): Promise<void> {
  const pin = q.takeValue('action', 'pin');
  if (pin) q.takeAll('module-tag');
  const action = remainingAction(q);
  if (action === undefined) {
    if (pin) throw unsupportedAction();
    q.done();
    if (!acceptsWasm(req)) throw new HttpError(406, 'not acceptable');
    const caller = await ownerCaller(parts, credentialsOf(parts, req), 'authorize');
    const program = await extantModule(parts, caller, key);
    res.writeHead(200, { 'Content-Type': WASM_TYPE, 'Content-Length': program.bytes.byteLength });
    res.end(program.bytes);
    parts.metrics.events.inc({ type: 'MODULE_DOWNLOAD' });
    return;
  }
  if (action !== 'call') throw unsupportedAction();
  takeRunParams(q, false);
  throw websocketRequired();
}

/** A websocket action requested without an upgrade (the upgrader's answer). */
export function websocketRequired(): HttpError {
  return new HttpError(400, 'Bad Request', { 'Sec-Websocket-Version': '13' });
}

async function putModule(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query, key: string): Promise<void> {
  if (contentType(req) !== WASM_TYPE) throw new HttpError(415, 'unsupported content type');
  const length = uploadLength(req);
  if (!q.takeValue('action', 'pin')) throw unsupportedAction();
  if (q.has('action')) throw unsupportedAction();
  const tags = q.takeAll('module-tag');
  q.done();
  const caller = await ownerCaller(parts, credentialsOf(parts, req), 'program');
  const program = await uploadModule(parts, caller, key, length, () => readBody(req, length, parts.config.http.bodytimeout * 1000));
  await pinModule(parts, caller, program.hash, tags, program.bytes);
  sendEmpty(res, 201);
}

async function postModule(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query, key: string): Promise<void> {
  if (!q.has('action')) {
    q.done();
    requireNoContentType(req);
    requireEmptyBody(req);
    requireJSON(req);
    const caller = await ownerCaller(parts, credentialsOf(parts, req), 'authorize');
    const tags = await parts.inventory.pinTags(caller.principal!, key);
    if (!tags || !(await parts.modules.has(key))) throw new HttpError(404, 'module not found');
    parts.metrics.events.inc({ type: 'MODULE_INFO' });
    sendJSON(res, moduleInfo({ module: key, tags }));
    return;
  }
  const pin = q.takeValue('action', 'pin');
  const tags = pin ? q.takeAll('module-tag') : [];
  const suspend = q.takeValue('action', 'suspend');
  const action = remainingAction(q);
  const wasm = contentType(req) === WASM_TYPE;

  switch (action) {
    case 'call': {
      const params = takeRunParams(q, false);
      if (wasm) {
        const length = uploadLength(req);
        const creds = credentialsOf(parts, req);
        const caller = pin ? await ownerCaller(parts, creds, 'program-instance') : await anyCaller(parts, creds, 'program-instance');
        const program = await uploadModule(parts, caller, key, length, () => readBody(req, length, parts.config.http.bodytimeout * 1000), pin);
        if (pin) await pinModule(parts, caller, program.hash, tags, program.bytes);
        return call(parts, req, res, caller, program, params, pin, false);
      }
      if (pin) throw badRequest('unexpected query parameters');
      const caller = await ownerCaller(parts, credentialsOf(parts, req), 'instance');
      const program = await extantModule(parts, caller, key);
      return call(parts, req, res, caller, program, params, false, true);
    }
    case 'launch': {
      const params = takeRunParams(q, true);
      const type = contentType(req);
      let caller: Caller;
      let program: Program;
      if (type !== undefined) {
        if (type !== WASM_TYPE) throw new HttpError(415, 'unsupported content type');
        const length = uploadLength(req);
        caller = await ownerCaller(parts, credentialsOf(parts, req), 'program-instance');
        program = await uploadModule(parts, caller, key, length, () => readBody(req, length, parts.config.http.bodytimeout * 1000));
        if (pin) await pinModule(parts, caller, program.hash, tags, program.bytes);
      } else {
        if (pin) throw badRequest('unexpected query parameters');
        requireEmptyBody(req);
        caller = await ownerCaller(parts, credentialsOf(parts, req), 'instance');
        program = await extantModule(parts, caller, key);
      }
      return launch(parts, res, caller, program, params, suspend, pin);
    }
    case 'unpin': {
      if (pin) throw badRequest('unexpected query parameters');
      q.done();
      requireNoContentType(req);
      requireEmptyBody(req);
      const caller = await ownerCaller(parts, credentialsOf(parts, req), 'authorize');
      await unpinModule(parts, caller, key);
      sendEmpty(res);
      return;
    }
    case undefined: {
      if (!pin) throw unsupportedAction();
      q.done();
      requireNoContentType(req);
      requireEmptyBody(req);
      const caller = await ownerCaller(parts, credentialsOf(parts, req), 'program');
      await pinExtant(parts, caller, key, tags);
      sendEmpty(res);
      return;
    }
    default:
      throw unsupportedAction();
  }
}

async function call(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  caller: Caller,
  program: Program,
  params: RunParams,
  pinned: boolean,
  input: boolean,
): Promise<void> {
  const inst = await createInstance(parts, caller, program, { fn: params.fn, tags: params.tags, transient: true });
  const headers: Record<string, string> = {};
  if (caller.principal !== undefined) headers['Gate-Instance'] = inst.id;
  if (pinned) headers.Location = MODULE_PATH + program.hash;
  await serveCall(parts, req, res, inst, { status: pinned ? 201 : 200, headers, input });
}

async function launch(
  parts: ServerParts,
  res: ServerResponse,
  caller: Caller,
  program: Program,
  params: RunParams,
  suspend: boolean,
  pinned: boolean,
): Promise<void> {
  const inst = await createInstance(parts, caller, program, { fn: params.fn, id: params.id, tags: params.tags, suspend, transient: false });
  const headers: Record<string, string> = { 'Gate-Instance': inst.id };
  if (pinned) headers.Location = MODULE_PATH + program.hash;
  sendEmpty(res, pinned ? 201 : 200, headers);
}

export async function handleSourceItem(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  q: Query,
  source: Source,
  rest: string,
): Promise<void> {
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (q.empty) {
      sendEmpty(res);
      return;
    }
    const pin = q.takeValue('action', 'pin');
    if (pin) q.takeAll('module-tag');
    const action = remainingAction(q);
    if (action === undefined) throw badRequest('missing query parameter: action');
    if (action !== 'call') throw unsupportedAction();
    takeRunParams(q, false);
    throw websocketRequired();
  }
  const pin = q.takeValue('action', 'pin');
  const tags = pin ? q.takeAll('module-tag') : [];
  const suspend = q.takeValue('action', 'suspend');
  const action = remainingAction(q);
  switch (action) {
    case undefined: {
      if (!pin) throw unsupportedAction();
      q.done();
      requireNoContentType(req);
      requireEmptyBody(req);
      const caller = await ownerCaller(parts, credentialsOf(parts, req), 'program');
      const program = await sourceModule(parts, caller, source, rest);
      await pinModule(parts, caller, program.hash, tags, program.bytes);
      sendEmpty(res, 201, { Location: MODULE_PATH + program.hash });
      return;
    }
    case 'call': {
      if (suspend) throw unsupportedAction();
      const params = takeRunParams(q, false);
      const creds = credentialsOf(parts, req);
      const caller = pin ? await ownerCaller(parts, creds, 'program-instance') : await anyCaller(parts, creds, 'program-instance');
      const program = await sourceModule(parts, caller, source, rest);
      if (pin) await pinModule(parts, caller, program.hash, tags, program.bytes);
      return call(parts, req, res, caller, program, params, pin, true);
    }
    case 'launch': {
      const params = takeRunParams(q, true);
      requireNoContentType(req);
      requireEmptyBody(req);
      const caller = await ownerCaller(parts, credentialsOf(parts, req), 'program-instance');
      const program = await sourceModule(parts, caller, source, rest);
      if (pin) await pinModule(parts, caller, program.hash, tags, program.bytes);
      return launch(parts, res, caller, program, params, suspend, pin);
    }
    default:
      throw unsupportedAction();
  }
}
