// Server operations shared by the HTTP and websocket front ends: getting a
// module (upload, extant pin, source), pinning, and creating instances.

import { badRequest, conflict, limitExceeded, moduleNotFound } from './errors.ts';
import type { Caller, ServerParts } from './context.ts';
import type { ServerInstance } from './instances.ts';
import { pagesFor } from './modules.ts';
import { ownerOf } from './request-source.ts';
import type { Source } from './sources.ts';

export interface Program {
  hash: string;
  bytes: Uint8Array;
}

/**
 * An uploaded module: `read` delivers exactly `length` body bytes. The key
 * named by the client must match the content. `keep`: it is to be pinned or
 * launched, so its stored copy is checked (and replaced if damaged) even
 * when this process stored it lately.
 */
export async function uploadModule(
  parts: ServerParts,
  caller: Caller,
  key: string,
  length: number,
  read: () => Promise<Uint8Array>,
  keep = true,
): Promise<Program> {
  const max = caller.limits.maxmodulesize;
  if (length > max) throw badRequest('module size limit exceeded').failing('RESOURCE_LIMIT');
  // The same answers whether the server has the module or not: a stored
  // module's size is not told apart from any other mismatch.
  const known = await parts.modules.has(key);
  const bytes = await read();
  const { hash } = await parts.modules.add(bytes, pagesFor(caller.limits.maxmemorysize), key, ownerOf(caller.principal), keep);
  if (known) {
    event(parts, 'MODULE_UPLOAD_EXIST', caller, { module: hash });
    return { hash, bytes };
  }
  event(parts, 'MODULE_UPLOAD_NEW', caller, { module: hash });
  return { hash, bytes };
}

/** A module the caller has pinned. */
export async function extantModule(parts: ServerParts, caller: Caller, key: string): Promise<Program> {
  if (caller.principal === undefined) throw parts.verifier.anonymous();
  if (!(await parts.modules.pinned(caller.principal, key)) || !(await parts.modules.has(key))) throw moduleNotFound();
  return { hash: key, bytes: await parts.modules.bytes(key) };
}

/** A module fetched from a configured source, validated and stored. */
export async function sourceModule(parts: ServerParts, caller: Caller, source: Source, rest: string): Promise<Program> {
  const bytes = await source.fetch(rest, caller.limits.maxmodulesize);
  const { hash } = await parts.modules.add(bytes, pagesFor(caller.limits.maxmemorysize), undefined, ownerOf(caller.principal));
  await parts.inventory.recordSource(`/${source.name}/${rest}`, hash);
  event(parts, 'MODULE_SOURCE_NEW', caller, { module: hash });
  return { hash, bytes };
}

/**
 * Pin a module for the caller (tags replace the old ones when given and
 * different). `bytes`: the module, stored again should another process of
 * the server have collected it from the cache of unpinned modules meanwhile.
 */
export async function pinModule(parts: ServerParts, caller: Caller, hash: string, tags: string[], bytes?: Uint8Array): Promise<void> {
  const principal = caller.principal;
  if (principal === undefined) throw parts.verifier.anonymous();
  const already = (await parts.inventory.pinTags(principal, hash)) !== undefined;
  if (!already && (await parts.inventory.pinCount(principal)) >= caller.limits.maxmodules) {
    throw limitExceeded('pinned module', 'principal.maxmodules', caller.limits.maxmodules);
  }
  checkTags(tags);
  let pinned = await parts.inventory.pin(principal, hash, tags);
  if (pinned === 'missing' && bytes) {
    await parts.inventory.putModule(hash, bytes);
    pinned = await parts.inventory.pin(principal, hash, tags);
  }
  if (pinned === 'missing') throw moduleNotFound();
  if (pinned) event(parts, 'MODULE_PIN', caller, { module: hash, tagcount: tags.length });
}

/** Pin an extant module: the caller must have it pinned or use it in one of its instances. */
export async function pinExtant(parts: ServerParts, caller: Caller, hash: string, tags: string[]): Promise<void> {
  const principal = caller.principal;
  if (principal === undefined) throw parts.verifier.anonymous();
  const instances = parts.shards ? await parts.shards.list(principal) : (await parts.instances.list(principal)).map((i) => i.info());
  const usable =
    (await parts.modules.has(hash)) && ((await parts.inventory.pinTags(principal, hash)) !== undefined || instances.some((i) => i.module === hash));
  if (!usable) throw moduleNotFound();
  await pinModule(parts, caller, hash, tags);
}

export async function unpinModule(parts: ServerParts, caller: Caller, hash: string): Promise<void> {
  if (caller.principal === undefined) throw parts.verifier.anonymous();
  if (!(await parts.inventory.unpin(caller.principal, hash))) throw moduleNotFound();
  parts.modules.forgetPin(caller.principal, hash);
  // The other shards forget it before the unpin is answered: no call of it gets through after.
  await parts.shards?.unpinned(caller.principal, hash);
  await parts.modules.release(hash);
  event(parts, 'MODULE_UNPIN', caller, { module: hash });
}

export interface InstanceRequest {
  fn?: string;
  id?: string;
  tags?: string[];
  suspend?: boolean;
  transient: boolean;
}

/** Create (and unless suspended, start) an instance of a program for the caller. */
export async function createInstance(parts: ServerParts, caller: Caller, program: Program, r: InstanceRequest): Promise<ServerInstance> {
  if (r.suspend && r.fn) throw conflict('function cannot be specified for suspended instance');
  if (!r.transient && caller.principal === undefined) throw parts.verifier.anonymous();
  checkTags(r.tags ?? []);
  return parts.instances.create({
    principal: caller.principal,
    module: program.hash,
    bytes: program.bytes,
    fn: r.fn,
    transient: r.transient,
    suspend: r.suspend,
    tags: r.tags,
    id: r.id,
    limits: caller.limits,
    scope: caller.scope,
  });
}

const MAX_TAGS = 64;
const MAX_TAG_BYTES = 255;

/** Tags are free-form in Gate; we cap their number and size so that records stay small. */
export function checkTags(tags: readonly string[]): void {
  if (tags.length > MAX_TAGS) throw badRequest(`too many tags (limit ${MAX_TAGS})`);
  for (const t of tags) if (Buffer.byteLength(t) > MAX_TAG_BYTES) throw badRequest(`tag is too long (limit ${MAX_TAG_BYTES} bytes)`);
}

function event(parts: ServerParts, type: string, caller: Caller, module: Record<string, unknown>): void {
  parts.metrics.events.inc({ type });
  parts.log.event(type, { principal: caller.principal, module });
}
