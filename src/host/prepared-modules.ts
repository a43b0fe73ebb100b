// Compiled, prepared modules kept by the program's SHA-256 and the
// preparation settings, whatever the host: ModuleCache (Node, with a disk
// cache) and BrowserModules (a browser tab, in memory) differ only in how
// they hash and where a preparation comes from. Concurrent requests for one
// program share one preparation, and a snapshot's program part finds the
// preparation of the program it was taken from. Nothing here is bound to Node.

import type { CompiledModule } from '../runtime/instance/instance.ts';
import { LIMITS_VERSION } from '../runtime/prepare/limits.ts';
import { PrepareError, PREPARE_VERSION, type PrepareOptions } from '../runtime/prepare/prepare.ts';
import type { PreparedModule } from '../runtime/prepare/prepared.ts';
import { programPartOf } from '../runtime/snapshot/read.ts';
import type { RestoreModules } from './snapshot.ts';

/** The preparation settings as one string (part of every key). */
export function settingsOf(options: PrepareOptions): string {
  return `${PREPARE_VERSION}|limits=${LIMITS_VERSION}|mem=${options.maxMemoryPages ?? 'default'}|abi=${options.abi ?? true}|all=${options.everything === true}`;
}

function hasWasmMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

/** Apply f to a value that may still be on its way (a synchronous hash keeps get() synchronous up to its promise). */
function then<T, R>(value: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}

export abstract class PreparedModules implements RestoreModules {
  private readonly compiled = new Map<string, Promise<CompiledModule>>();
  /** Program-part key (see programPartOf) → a preparation of an original with that part. */
  private readonly parts = new Map<string, Promise<CompiledModule>>();

  /** Lower-case hex SHA-256. */
  protected abstract digest(bytes: Uint8Array): string | Promise<string>;

  /** The prepared form of a program not known in memory yet (from a disk cache, or prepared now). */
  protected abstract load(hash: string, bytes: Uint8Array, options: PrepareOptions): Promise<PreparedModule>;

  /**
   * The compiled, prepared form of a program; prepares it only when no
   * cached copy exists. `hash`: its SHA-256 when the caller knows it already
   * (a server hashes every upload), so that it is not computed again.
   */
  get(bytes: Uint8Array, options: PrepareOptions = {}, hash?: string): Promise<CompiledModule> {
    // Gate's words for bytes that are not wasm at all (V8's would be "BufferSource argument is empty" or a magic-word dump).
    if (!hasWasmMagic(bytes)) return Promise.reject(new PrepareError('ERR_MODULE_INVALID', 'not a WebAssembly module'));
    if (hash !== undefined) return this.entry(hash, bytes, options);
    return Promise.resolve(then(this.digest(bytes), (h) => this.entry(h, bytes, options)));
  }

  /**
   * The compiled form for restoring a snapshot whose program part is
   * `part` into `pages` pages of memory. The program part is not byte-equal
   * to the program it came from, but when that program was prepared here
   * its preparation serves: same code, types, imports, exports, tables and
   * immutable globals; its data and mutable globals are overwritten by the
   * restore. Only its initial memory must fit.
   */
  async getForRestore(part: Uint8Array, pages: number, options: PrepareOptions = {}): Promise<CompiledModule> {
    const alias = this.parts.get(`${await this.digest(part)}|${settingsOf(options)}`);
    if (alias) {
      const compiled = await alias.catch(() => undefined);
      if (compiled && compiled.prepared.info.memory.initial <= pages) return compiled;
    }
    return this.get(part, options);
  }

  /** Offer a module compiled elsewhere (another thread prepared it), so that get() for it needs no work here. */
  protected remember(hash: string, compiled: CompiledModule, options: PrepareOptions): void {
    const key = `${hash}|${settingsOf(options)}`;
    if (this.compiled.has(key)) return;
    const entry = Promise.resolve(compiled);
    this.compiled.set(key, entry);
    // Its snapshots (hibernations, checkpoints) restore with it too.
    this.notePart(compiled.program, options, entry);
  }

  /** Let a program go from memory (its instances keep what they use); a disk cache keeps it. */
  drop(bytes: Uint8Array, options: PrepareOptions = {}): void {
    const settings = settingsOf(options);
    const dropped = then(this.digest(bytes), (hash) => {
      this.compiled.delete(`${hash}|${settings}`);
    });
    if (dropped instanceof Promise) dropped.catch(() => {});
    let part: Uint8Array | null = null;
    try {
      part = programPartOf(bytes);
    } catch {
      // not a module: nothing noted for it
    }
    if (part === null) return;
    const forgotten = then(this.digest(part), (hash) => {
      this.parts.delete(`${hash}|${settings}`);
    });
    if (forgotten instanceof Promise) forgotten.catch(() => {});
  }

  private entry(hash: string, bytes: Uint8Array, options: PrepareOptions): Promise<CompiledModule> {
    const key = `${hash}|${settingsOf(options)}`;
    let entry = this.compiled.get(key);
    if (!entry) {
      entry = this.load(hash, bytes, options).then(async (prepared) => ({
        prepared,
        module: await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>),
        program: bytes,
      }));
      this.compiled.set(key, entry);
      entry.catch(() => this.compiled.delete(key));
      this.notePart(bytes, options, entry);
    }
    return entry;
  }

  private notePart(bytes: Uint8Array, options: PrepareOptions, entry: Promise<CompiledModule>): void {
    let part: Uint8Array | null;
    try {
      part = programPartOf(bytes);
    } catch {
      return; // not a valid module: get() reports that
    }
    if (part === null) return;
    const note = then(this.digest(part), (hash) => {
      const key = `${hash}|${settingsOf(options)}`;
      if (!this.parts.has(key)) this.parts.set(key, entry);
    });
    if (note instanceof Promise) note.catch(() => {}); // without the alias a restore prepares the part itself

  }
}
