// Prepared modules cached on disk by the program's hash and the preparation
// settings, so that a program is rewritten once per machine and later starts
// need only compilation.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LIMITS_VERSION } from '../runtime/prepare/limits.ts';
import { PrepareError, PREPARE_VERSION, prepareModule, type PrepareOptions } from '../runtime/prepare/prepare.ts';
import type { PreparedModule, ProgramInfo } from '../runtime/prepare/prepared.ts';
import type { CompiledModule } from '../runtime/instance/instance.ts';
import { programPartOf } from '../runtime/snapshot/read.ts';

export function defaultCacheDir(): string {
  if (process.env.GATE_CACHE_DIR) return process.env.GATE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'gate-ts');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function hasWasmMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

/** Prepares, compiles and caches modules (in memory and on disk). */
export class ModuleCache {
  private readonly dir: string | null;
  private readonly maxBytes: number;
  private readonly compiled = new Map<string, Promise<CompiledModule>>();
  /** Program-part key (see programPartOf) → a preparation of an original with that part. */
  private readonly parts = new Map<string, Promise<CompiledModule>>();

  /** `maxBytes`: the disk cache is kept below this by removing the entries used longest ago. */
  constructor(dir: string | null = defaultCacheDir(), maxBytes = Infinity) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** The compiled, prepared form of a program; prepares it only when no cached copy exists. */
  get(bytes: Uint8Array, options: PrepareOptions = {}): Promise<CompiledModule> {
    // Gate's words for bytes that are not wasm at all (V8's would be "BufferSource argument is empty" or a magic-word dump).
    if (!hasWasmMagic(bytes)) return Promise.reject(new PrepareError('ERR_MODULE_INVALID', 'not a WebAssembly module'));
    const key = cacheKey(sha256Hex(bytes), options);
    let entry = this.compiled.get(key);
    if (!entry) {
      entry = this.load(key, bytes, options);
      this.compiled.set(key, entry);
      entry.catch(() => this.compiled.delete(key));
      this.notePart(bytes, options, entry);
    }
    return entry;
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
    const alias = this.parts.get(cacheKey(sha256Hex(part), options));
    if (alias) {
      const compiled = await alias.catch(() => undefined);
      if (compiled && compiled.prepared.info.memory.initial <= pages) return compiled;
    }
    return this.get(part, options);
  }

  private notePart(bytes: Uint8Array, options: PrepareOptions, entry: Promise<CompiledModule>): void {
    let part: Uint8Array | null;
    try {
      part = programPartOf(bytes);
    } catch {
      return; // not a valid module: get() reports that
    }
    if (part === null) return;
    const key = cacheKey(sha256Hex(part), options);
    if (!this.parts.has(key)) this.parts.set(key, entry);
  }

  /**
   * Offer a module compiled elsewhere (another thread prepared it and sent
   * the compiled WebAssembly.Module), so that get() for the same program and
   * settings needs no work here.
   */
  seed(compiled: CompiledModule, options: PrepareOptions = {}): void {
    const key = cacheKey(sha256Hex(compiled.program), options);
    if (!this.compiled.has(key)) this.compiled.set(key, Promise.resolve(compiled));
  }

  /** Let a program go from memory (its instances keep what they use); the disk keeps it. */
  drop(bytes: Uint8Array, options: PrepareOptions = {}): void {
    const key = cacheKey(sha256Hex(bytes), options);
    this.compiled.delete(key);
    let part: Uint8Array | null = null;
    try {
      part = programPartOf(bytes);
    } catch {
      // not a module: nothing noted for it
    }
    if (part) this.parts.delete(cacheKey(sha256Hex(part), options));
  }

  private async load(key: string, bytes: Uint8Array, options: PrepareOptions): Promise<CompiledModule> {
    let prepared = await this.readDisk(key);
    if (!prepared) {
      prepared = await prepareModule(bytes, options);
      await this.writeDisk(key, prepared);
    }
    return { prepared, module: await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>), program: bytes };
  }

  private async readDisk(key: string): Promise<PreparedModule | undefined> {
    if (!this.dir) return undefined;
    try {
      const [bytes, json] = await Promise.all([
        readFile(path.join(this.dir, `${key}.wasm`)),
        readFile(path.join(this.dir, `${key}.json`), 'utf8'),
      ]);
      const meta = JSON.parse(json) as { version: string; info: ProgramInfo };
      if (meta.version !== PREPARE_VERSION) return undefined;
      // Used now: the last to go when the cache is trimmed.
      const now = new Date();
      await utimes(path.join(this.dir, `${key}.wasm`), now, now).catch(() => {});
      return { bytes: new Uint8Array(bytes), info: meta.info, version: meta.version };
    } catch {
      return undefined;
    }
  }

  private async writeDisk(key: string, prepared: PreparedModule): Promise<void> {
    if (!this.dir) return;
    try {
      await mkdir(this.dir, { recursive: true });
      // Write then rename, so a crash never leaves a half-written entry.
      const tmp = `.${key}.${process.pid}.${Date.now()}`;
      await writeFile(path.join(this.dir, `${tmp}.wasm`), prepared.bytes);
      await writeFile(path.join(this.dir, `${tmp}.json`), JSON.stringify({ version: prepared.version, info: prepared.info }));
      await rename(path.join(this.dir, `${tmp}.wasm`), path.join(this.dir, `${key}.wasm`));
      await rename(path.join(this.dir, `${tmp}.json`), path.join(this.dir, `${key}.json`));
      if (this.maxBytes !== Infinity) await this.trim(this.dir);
    } catch {
      // A cache that cannot be written only costs time.
    }
  }

  /** Remove the entries used longest ago until the cache is below 90% of maxBytes. */
  private async trim(dir: string): Promise<void> {
    const entries = new Map<string, { size: number; used: number }>();
    let total = 0;
    for (const name of await readdir(dir)) {
      const m = /^([0-9a-f]{64}-[0-9a-f]{16})\.(wasm|json)$/.exec(name);
      if (!m) continue;
      const info = await stat(path.join(dir, name)).catch(() => undefined);
      if (!info) continue;
      const e = entries.get(m[1]) ?? { size: 0, used: 0 };
      e.size += info.size;
      if (m[2] === 'wasm') e.used = info.mtimeMs;
      entries.set(m[1], e);
      total += info.size;
    }
    if (total <= this.maxBytes) return;
    for (const [key, e] of [...entries].sort((a, b) => a[1].used - b[1].used)) {
      if (total <= this.maxBytes * 0.9) break;
      await unlink(path.join(dir, `${key}.wasm`)).catch(() => {});
      await unlink(path.join(dir, `${key}.json`)).catch(() => {});
      total -= e.size;
    }
  }
}

function cacheKey(hash: string, options: PrepareOptions): string {
  const settings = `${PREPARE_VERSION}|limits=${LIMITS_VERSION}|mem=${options.maxMemoryPages ?? 'default'}|abi=${options.abi ?? true}|all=${options.everything === true}`;
  return `${hash}-${sha256Hex(new TextEncoder().encode(settings)).slice(0, 16)}`;
}
