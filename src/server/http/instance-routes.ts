// Instance routes (api.md §8–§9): the caller's instance list, and actions on
// one instance: info, io, wait, kill, suspend, resume, snapshot, delete,
// update, debug.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { statusToJSON } from '../../runtime/instance/status.ts';
import { ownerCaller, type ServerParts } from '../api/context.ts';
import { credentialsOf, listCaller } from './caller.ts';
import { debugInstance, parseDebugRequest } from '../api/debug.ts';
import { badRequest, HttpError, notFound, unsupportedAction } from '../api/errors.ts';
import { acceptsJSON, readSmallBody, requireContentType, requireJSON, sendEmpty, sendJSON } from './messages.ts';
import { MODULE_PATH, websocketRequired } from './module-routes.ts';
import { checkTags, pinModule } from '../api/operations.ts';
import { clientGone, serveIO } from './program-io.ts';
import { instanceIdError } from '../api/ids.ts';
import type { Query } from './query.ts';

export async function handleInstanceList(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query): Promise<void> {
  const caller = await listCaller(parts, req, res, q);
  if (!caller) return;
  const list = parts.shards ? await parts.shards.list(caller.principal!) : (await parts.instances.list(caller.principal!)).map((i) => i.info());
  parts.metrics.events.inc({ type: 'INSTANCE_LIST' });
  sendJSON(res, list.length === 0 ? {} : { instances: list });
}

const WAITABLE = new Set(['kill', 'suspend', 'wait', 'kill+wait', 'suspend+wait']);

export async function handleInstance(parts: ServerParts, req: IncomingMessage, res: ServerResponse, q: Query, id: string): Promise<void> {
  const problem = instanceIdError(id);
  if (problem) throw notFound(problem);

  if (req.method === 'GET' || req.method === 'HEAD') {
    if (q.empty) {
      sendEmpty(res);
      return;
    }
    const actions = q.takeAll('action');
    if (actions.length === 0) throw badRequest('missing query parameter: action');
    if (actions.length > 1) throw unsupportedAction();
    if (actions[0] !== 'io') throw unsupportedAction();
    q.done();
    throw websocketRequired();
  }

  const actions = q.takeAll('action');
  const creds = () => credentialsOf(parts, req);
  if (actions.length === 0) {
    q.done();
    requireJSON(req);
    const caller = await ownerCaller(parts, creds(), 'authorize');
    sendJSON(res, (await parts.instances.describe(caller.principal!, id)).info());
    return;
  }
  const set = [...new Set(actions)].sort().join('+');
  const single = actions.length === 1 ? actions[0] : undefined;

  switch (single) {
    case 'io': {
      q.done();
      const caller = await ownerCaller(parts, creds(), 'authorize');
      const inst = await parts.instances.get(caller.principal!, id);
      return serveIO(parts, req, res, inst);
    }
    case 'resume': {
      const fn = q.takeFunction();
      q.takeLog();
      q.done();
      const caller = await ownerCaller(parts, creds(), 'instance');
      const inst = await parts.instances.get(caller.principal!, id);
      inst.limits = caller.limits;
      await parts.instances.resume(inst, fn);
      sendEmpty(res);
      return;
    }
    case 'snapshot': {
      const tags = q.takeAll('module-tag');
      q.done();
      checkTags(tags);
      const caller = await ownerCaller(parts, creds(), 'authorize');
      const inst = await parts.instances.get(caller.principal!, id);
      const hash = await parts.instances.snapshot(inst);
      await pinModule(parts, caller, hash, tags);
      sendEmpty(res, 201, { Location: MODULE_PATH + hash });
      return;
    }
    case 'delete': {
      q.done();
      const caller = await ownerCaller(parts, creds(), 'authorize');
      await parts.instances.delete(await parts.instances.get(caller.principal!, id));
      sendEmpty(res);
      return;
    }
    case 'update': {
      q.done();
      requireContentType(req, 'application/json');
      const caller = await ownerCaller(parts, creds(), 'authorize');
      // As Gate: the content is parsed before the instance is looked up.
      const update = parseUpdate(await readSmallBody(req, parts.config.http.maxbodysize, parts.config.http.bodytimeout * 1000));
      const inst = await parts.instances.get(caller.principal!, id);
      checkTags(update.tags);
      parts.instances.update(inst, update.persist, update.tags);
      if (acceptsJSON(req)) sendJSON(res, inst.info());
      else sendEmpty(res);
      return;
    }
    case 'debug': {
      q.done();
      requireContentType(req, 'application/json');
      const caller = await ownerCaller(parts, creds(), 'program');
      const request = parseDebugRequest(await readSmallBody(req, parts.config.http.maxbodysize, parts.config.http.bodytimeout * 1000));
      const inst = await parts.instances.get(caller.principal!, id);
      sendJSON(res, await debugInstance(parts, inst, request));
      return;
    }
  }

  if (!WAITABLE.has(set) || (set !== 'kill' && actions.length !== set.split('+').length)) throw unsupportedAction();
  q.done();
  const caller = await ownerCaller(parts, creds(), 'authorize');
  const inst = await parts.instances.get(caller.principal!, id);
  if (set.includes('kill')) parts.instances.kill(inst);
  if (set.includes('suspend')) parts.instances.suspend(inst);
  if (set.includes('wait')) {
    const status = await parts.instances.wait(inst, clientGone(res));
    sendEmpty(res, 200, { 'Gate-Status': JSON.stringify(statusToJSON(status)) });
    return;
  }
  sendEmpty(res);
}

interface Update {
  persist: boolean;
  tags: string[];
}

/** InstanceUpdate with protobuf JSON rules: unknown fields are an error; `transient` is accepted for `persist` (stock client). */
function parseUpdate(body: Uint8Array): Update {
  const fail = () => new HttpError(400, 'content parse error');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw fail();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail();
  const out: Update = { persist: false, tags: [] };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'persist' || k === 'transient') {
      if (v !== null && typeof v !== 'boolean') throw fail();
      out.persist ||= v === true;
    } else if (k === 'tags') {
      if (v === null) continue;
      if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) throw fail();
      out.tags = v;
    } else {
      throw fail();
    }
  }
  return out;
}
