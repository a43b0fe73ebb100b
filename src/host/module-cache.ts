// Prepared modules cached on disk by the program's hash and the preparation
// settings, so that a program is rewritten once per machine and later starts
// need only compilation.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PREPARE_VERSION, prepareModule, type PrepareOptions } from '../runtime/prepare/prepare.ts';
import type { PreparedModule, ProgramInfo } from '../runtime/prepare/prepared.ts';
import type { CompiledModule } from '../runtime/instance/instance.ts';
import { setSha256 } from '../runtime/snapshot/format.ts';
import { PreparedModules, settingsOf } from './prepared-modules.ts';

// Snapshot digests with node:crypto: synchronous (no thread-pool hop) and
// about twice as fast as WebCrypto here (64 MiB: ~40 ms against ~85 ms).
// Set here because every Node host that snapshots or restores has a cache.
setSha256((bytes) => new Uint8Array(createHash('sha256').update(bytes).digest()));

export function defaultCacheDir(): string {
  if (process.env.GATE_CACHE_DIR) return process.env.GATE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'gate-ts');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Prepares, compiles and caches modules (in memory and on disk). */
export class ModuleCache extends PreparedModules {
  private readonly dir: string | null;

  constructor(dir: string | null = defaultCacheDir()) {
    super();
    this.dir = dir;
  }

  protected digest(bytes: Uint8Array): string {
    return sha256Hex(bytes);
  }

  /**
   * Offer a module compiled elsewhere (another thread prepared it and sent
   * the compiled WebAssembly.Module), so that get() for the same program and
   * settings needs no work here.
   */
  seed(compiled: CompiledModule, options: PrepareOptions = {}): void {
    this.remember(sha256Hex(compiled.program), compiled, options);
  }

  protected async load(hash: string, bytes: Uint8Array, options: PrepareOptions): Promise<PreparedModule> {
    const key = cacheKey(hash, options);
    let prepared = await this.readDisk(key);
    if (!prepared) {
      prepared = await prepareModule(bytes, options);
      await this.writeDisk(key, prepared);
    }
    return prepared;
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
    } catch {
      // A cache that cannot be written only costs time.
    }
  }
}

/** The file name of a cache entry: the program's hash and a short hash of the settings. */
function cacheKey(hash: string, options: PrepareOptions): string {
  return `${hash}-${sha256Hex(new TextEncoder().encode(settingsOf(options))).slice(0, 16)}`;
}
