// Prepared modules cached on disk by the program's hash and the preparation
// settings, so that a program is rewritten once per machine and later starts
// need only compilation.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
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
  private readonly maxBytes: number;

  /** `maxBytes`: the disk cache is kept below this by removing the entries used longest ago. */
  constructor(dir: string | null = defaultCacheDir(), maxBytes = Infinity) {
    super();
    this.dir = dir;
    this.maxBytes = maxBytes;
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

/** The file name of a cache entry: the program's hash and a short hash of the settings. */
function cacheKey(hash: string, options: PrepareOptions): string {
  return `${hash}-${sha256Hex(new TextEncoder().encode(settingsOf(options))).slice(0, 16)}`;
}
