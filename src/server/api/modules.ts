// Known modules: content-addressed by SHA-256, validated by the executor
// before they are stored, and read back from the store on demand.

import { createHash } from 'node:crypto';
import { badRequest, HttpError } from './errors.ts';
import { ExecError, type Executor, type ProgramFacts } from '../exec/executor.ts';
import { RecentMap } from '../util/recent-map.ts';
import { ModuleCorruptError } from '../store/store.ts';
import type { Inventory } from '../store/inventory.ts';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function pagesFor(bytes: number): number {
  return Math.max(0, Math.floor(bytes / 65536));
}

/** An executor failure as the client sees it. */
export function execHttpError(error: unknown): Error {
  if (error instanceof HttpError) return error;
  if (error instanceof ExecError) {
    if (error.kind === 'module') return badRequest(error.message).failing('MODULE_ERROR');
    if (error.kind === 'entry') return new HttpError(404, error.message).failing('FUNCTION_NOT_FOUND');
    if (error.kind === 'state') return new HttpError(409, error.message).failing('INSTANCE_STATUS');
    if (error.kind === 'busy') return new HttpError(503, error.message).failing('RESOURCE_LIMIT');
  }
  return error as Error;
}

/** Seconds a newly stored module is kept whatever the cache holds: long enough to be pinned or used. */
const YOUNG_SECONDS = 5;
/** Module bytes kept in memory for reuse, by count and in all. */
const RECENT = 16;
const RECENT_BYTES = 32 * 1024 * 1024;
/** Hashes of stored modules remembered. */
const STORED_KEPT = 10_000;
/** Pins remembered. */
const PINS_KEPT = 100_000;

/** Where the cache of unpinned modules is kept: here within `bytes`, or by another process told of each use (the shards' supervisor). */
export type UnpinnedCache = { bytes: number } | { elsewhere: (hash: string) => void };

export class Modules {
  private readonly inventory: Inventory;
  private readonly executor: Executor;
  private readonly recent = new RecentMap<string, Uint8Array>(RECENT, { of: (b) => b.byteLength, max: RECENT_BYTES });
  /** Modules this process stored or found stored (so that an upload it has seen needs no disk access), with their sizes. */
  private readonly stored = new RecentMap<string, number>(STORED_KEPT);
  /**
   * Stored modules that nothing may refer to yet (uploaded for a call, fetched
   * from a source, unpinned), oldest use first, with their size and when
   * they came: past `unpinnedBytes` the oldest ones go, unless by then
   * something refers to them.
   */
  private readonly unpinned = new Map<string, { size: number; added: number }>();
  private unpinnedTotal = 0;
  private readonly unpinnedBytes: number;
  private readonly usedElsewhere: ((hash: string) => void) | undefined;
  /**
   * Pins known here (`principal hash`), so that the calls of a pinned module
   * ask the inventory once; only where no other server shares it (the shards
   * of one server tell each other of unpins).
   */
  private readonly pins = new RecentMap<string, true>(PINS_KEPT);

  constructor(inventory: Inventory, executor: Executor, cache: UnpinnedCache = { bytes: Infinity }) {
    this.inventory = inventory;
    this.executor = executor;
    this.unpinnedBytes = 'bytes' in cache ? cache.bytes : Infinity;
    this.usedElsewhere = 'elsewhere' in cache ? cache.elsewhere : undefined;
  }

  /** Bytes of modules held in the cache of unpinned modules. */
  get unpinnedSize(): number {
    return this.unpinnedTotal;
  }

  /** A stored module nothing may refer to now: it stays while the cache has room for it. */
  async release(hash: string, size?: number): Promise<void> {
    size ??= await this.inventory.moduleSize(hash);
    if (size === undefined) return;
    if (this.usedElsewhere) {
      this.usedElsewhere(hash);
      return;
    }
    const old = this.unpinned.get(hash);
    if (old) {
      this.unpinned.delete(hash);
      this.unpinnedTotal -= old.size;
    }
    this.unpinned.set(hash, { size, added: old?.added ?? Date.now() });
    this.unpinnedTotal += size;
    const young = Date.now() - YOUNG_SECONDS * 1000;
    for (const [h, e] of this.unpinned) {
      if (this.unpinnedTotal <= this.unpinnedBytes) break;
      if (e.added > young) continue;
      await this.inventory.forgetSources(h);
      await this.collect(h);
    }
  }

  /** Remove a module from the store unless something refers to it. */
  async collect(hash: string): Promise<boolean> {
    const collected = await this.inventory.collectModule(hash);
    if (collected) this.forget(hash);
    return collected;
  }

  /** The module was removed from the store (here or by another process). */
  forget(hash: string): void {
    this.recent.delete(hash);
    this.stored.delete(hash);
    const e = this.unpinned.get(hash);
    if (e) {
      this.unpinned.delete(hash);
      this.unpinnedTotal -= e.size;
    }
  }

  /** Whether a principal has a module pinned. */
  async pinned(principal: string, hash: string): Promise<boolean> {
    const key = `${principal} ${hash}`;
    if (!this.inventory.shared && this.pins.get(key)) return true;
    if ((await this.inventory.pinTags(principal, hash)) === undefined) return false;
    if (!this.inventory.shared) this.pins.set(key, true);
    return true;
  }

  /** A pin is gone (unpinned here or by another shard). */
  forgetPin(principal: string, hash: string): void {
    this.pins.delete(`${principal} ${hash}`);
  }

  async has(hash: string): Promise<boolean> {
    // What this process stored or found lately is there unless it was collected (which it is told of), when no other server shares the inventory.
    if (this.inventory.shared) return this.inventory.hasModule(hash);
    if (this.stored.has(hash)) return true;
    const size = await this.inventory.moduleSize(hash);
    if (size === undefined) return false;
    this.stored.set(hash, size);
    return true;
  }

  /** Module bytes (a few recently used ones are kept in memory). */
  async bytes(hash: string): Promise<Uint8Array> {
    const cached = this.unpinned.get(hash);
    if (cached) {
      // Used again: newest in the cache.
      this.unpinned.delete(hash);
      this.unpinned.set(hash, cached);
    }
    this.usedElsewhere?.(hash);
    let bytes = this.recent.get(hash);
    if (!bytes) {
      try {
        bytes = await this.inventory.readModule(hash);
      } catch (error) {
        if (error instanceof ModuleCorruptError) {
          // Not taken as stored any more: the next upload writes it again.
          this.forget(hash);
          throw new HttpError(500, `module ${hash} is damaged on the server: upload it again`);
        }
        throw error;
      }
    }
    this.recent.set(hash, bytes);
    return bytes;
  }

  /**
   * Validate (prepare) and store a module. `expected` is the hash the client
   * named, which must match the content; `owner` shares preparation fairly.
   * Unless `verify`, a module this process stored lately is taken as stored
   * (a call's upload); otherwise its file is checked and replaced if damaged.
   */
  async add(bytes: Uint8Array, maxMemoryPages: number, expected?: string, owner?: string, verify = true): Promise<{ hash: string; facts: ProgramFacts }> {
    const hash = sha256Hex(bytes);
    if (expected !== undefined && hash !== expected) throw badRequest('module hash does not match content').failing('MODULE_HASH_MISMATCH');
    let facts: ProgramFacts;
    try {
      facts = await this.executor.prepare(bytes, hash, maxMemoryPages, owner);
    } catch (error) {
      throw execHttpError(error);
    }
    // An upload seen lately is stored already (what is collected is forgotten here); an inventory other
    // servers share may have lost it meanwhile, so there it is stored every time.
    if (verify || this.inventory.shared || this.stored.get(hash) !== bytes.byteLength) {
      await this.inventory.putModule(hash, bytes);
      this.stored.set(hash, bytes.byteLength);
    }
    this.recent.set(hash, bytes);
    await this.release(hash, bytes.byteLength);
    return { hash, facts };
  }
}
