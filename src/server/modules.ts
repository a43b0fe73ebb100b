// Known modules: content-addressed by SHA-256, validated by the executor
// before they are stored, and read back from the store on demand.

import { createHash } from 'node:crypto';
import { badRequest, HttpError } from './errors.ts';
import { ExecError, type Executor, type ProgramFacts } from './executor.ts';
import type { Store } from './store.ts';

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
  }
  return error as Error;
}

export class Modules {
  private readonly store: Store;
  private readonly executor: Executor;
  private readonly recent = new Map<string, Uint8Array>();
  private static readonly RECENT = 16;

  constructor(store: Store, executor: Executor) {
    this.store = store;
    this.executor = executor;
  }

  has(hash: string): boolean {
    return this.store.hasModule(hash);
  }

  size(hash: string): number | undefined {
    return this.store.moduleSize(hash);
  }

  /** Module bytes (a few recently used ones are kept in memory). */
  bytes(hash: string): Uint8Array {
    let bytes = this.recent.get(hash);
    if (bytes) {
      this.recent.delete(hash);
    } else {
      bytes = this.store.readModule(hash);
    }
    this.recent.set(hash, bytes);
    if (this.recent.size > Modules.RECENT) this.recent.delete(this.recent.keys().next().value!);
    return bytes;
  }

  /**
   * Validate (prepare) and store a module. `expected` is the hash the client
   * named, which must match the content.
   */
  async add(bytes: Uint8Array, maxMemoryPages: number, expected?: string): Promise<{ hash: string; facts: ProgramFacts }> {
    const hash = sha256Hex(bytes);
    if (expected !== undefined && hash !== expected) throw badRequest('module hash does not match content').failing('MODULE_HASH_MISMATCH');
    let facts: ProgramFacts;
    try {
      facts = await this.executor.prepare(bytes, hash, maxMemoryPages);
    } catch (error) {
      throw execHttpError(error);
    }
    this.store.putModule(hash, bytes);
    this.recent.set(hash, bytes);
    return { hash, facts };
  }
}
