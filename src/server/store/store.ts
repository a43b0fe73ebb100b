// Durable state under the data directory:
//
//   inventory.sqlite   pins, instance records, nonces, source cache, server id
//   module/<sha256>    module bytes, content-addressed (snapshots included)
//
// Module files are written (temporary file, fsync, rename) before any record
// refers to them, so a crash never leaves a record without its module.

import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Status } from '../../runtime/instance/status.ts';
import { DirectorySync, temporaryPath, writeSynced } from '../util/synced-files.ts';
import type { InstanceRecord } from './inventory.ts';

export type { InstanceRecord } from './inventory.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS module (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, created INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS pin (
  principal TEXT NOT NULL, module TEXT NOT NULL, tags TEXT NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (principal, module)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instance (
  principal TEXT NOT NULL, id TEXT NOT NULL, module TEXT NOT NULL, function TEXT NOT NULL,
  status TEXT NOT NULL, tags TEXT NOT NULL, checkpoint TEXT, resume INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (principal, id)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonce (
  scope BLOB NOT NULL, nonce TEXT NOT NULL, expire INTEGER NOT NULL,
  PRIMARY KEY (scope, nonce)) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonce_expire ON nonce (expire);
CREATE TABLE IF NOT EXISTS source_sha256 (source TEXT PRIMARY KEY, module TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS source_module ON source_sha256 (module);
CREATE INDEX IF NOT EXISTS pin_module ON pin (module);
-- Whether a module is in use is asked at every checkpoint (and hibernation): not a scan of every instance.
CREATE INDEX IF NOT EXISTS instance_module ON instance (module);
CREATE INDEX IF NOT EXISTS instance_checkpoint ON instance (checkpoint);
`;

/** Columns added since the first schema (a database made before them gets them). */
const ADDED_COLUMNS = [['instance', 'hibernation', 'TEXT']] as const;

/** The data directory's store; its check() is the nonce record of the token verifier (api/auth.ts). */
export class Store {
  readonly dir: string;
  readonly moduleDir: string;
  private readonly moduleDirSync: DirectorySync;
  private readonly db: DatabaseSync;
  private readonly stmts: Record<string, StatementSync> = {};

  /**
   * Open the data directory. Fails at once, saying why, when the database is
   * not a database, is corrupt, or is new beside module files it has no
   * record of (it was emptied or lost: starting on would orphan them).
   * Temporary files of writes cut short by a crash are removed. `shared`:
   * another process of this server opened it first and did those checks
   * (the shards of one server; SQLite serializes their writes).
   */
  constructor(dir: string, options: { shared?: boolean } = {}) {
    this.dir = dir;
    this.moduleDir = path.join(dir, 'module');
    this.moduleDirSync = new DirectorySync(this.moduleDir);
    mkdirSync(this.moduleDir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'inventory.sqlite');
    const existed = existsSync(file);
    try {
      this.db = new DatabaseSync(file);
      // WAL survives a process crash with every committed transaction intact.
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
      if (!options.shared) {
        const check = this.db.prepare('PRAGMA quick_check').all() as { quick_check: string }[];
        const problems = check.map((r) => r.quick_check).filter((r) => r !== 'ok');
        if (problems.length > 0) throw new Error(problems.slice(0, 3).join('; '));
        this.db.exec(SCHEMA);
        for (const [table, column, type] of ADDED_COLUMNS) {
          const has = (this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).some((c) => c.name === column);
          if (!has) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
        }
      }
    } catch (error) {
      throw new Error(`inventory database ${file} cannot be used: ${(error as Error).message}`);
    }
    if (options.shared) return;
    const modules = this.removeTemporaryFiles();
    const recorded = (this.stmt('SELECT count(*) AS n FROM module').get() as { n: number }).n;
    if (recorded === 0 && modules > 0) {
      this.db.close();
      const how = existed ? 'has no module records' : 'is new';
      throw new Error(
        `inventory database ${file} ${how} but ${this.moduleDir} holds ${modules} module files: ` +
          'restore the database from a backup, or move the module files away to start afresh',
      );
    }
  }

  /** Remove files left by interrupted writes (their names start with a dot); returns the number of module files. */
  private removeTemporaryFiles(): number {
    let modules = 0;
    for (const name of readdirSync(this.moduleDir)) {
      if (name.startsWith('.')) rmSync(path.join(this.moduleDir, name), { force: true });
      else modules++;
    }
    return modules;
  }

  private stmt(sql: string): StatementSync {
    return (this.stmts[sql] ??= this.db.prepare(sql));
  }

  close(): void {
    this.db.close();
  }

  /** The server's uuid: configured, else generated once and kept. */
  serverUuid(configured: string): string {
    if (configured) return configured;
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get('uuid') as { value: string } | undefined;
    if (row) return row.value;
    const uuid = randomUUID();
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?)').run('uuid', uuid);
    return uuid;
  }

  // Modules.

  hasModule(hash: string): boolean {
    return this.stmt('SELECT 1 FROM module WHERE hash = ?').get(hash) !== undefined;
  }

  moduleSize(hash: string): number | undefined {
    const row = this.stmt('SELECT size FROM module WHERE hash = ?').get(hash) as { size: number } | undefined;
    return row?.size;
  }

  modulePath(hash: string): string {
    return path.join(this.moduleDir, hash);
  }

  /** Module bytes, checked against their hash (a file damaged on disk is an error, never run). */
  readModule(hash: string): Uint8Array {
    const bytes = new Uint8Array(readFileSync(this.modulePath(hash)));
    if (sha256(bytes) !== hash) throw new ModuleCorruptError(hash);
    return bytes;
  }

  /**
   * Write module bytes durably and record them; a no-op when already stored
   * intact (a damaged copy is replaced). The file is written and synced off
   * the thread first: a checkpoint's two fsyncs done in place held every
   * request of the process for milliseconds. The record follows the file.
   */
  async putModule(hash: string, bytes: Uint8Array): Promise<void> {
    if (this.storedIntact(hash, bytes.byteLength) && this.hasModule(hash)) return;
    const tmp = temporaryPath(this.moduleDir, hash);
    try {
      await writeSynced(tmp, bytes);
      renameSync(tmp, this.modulePath(hash));
    } finally {
      rmSync(tmp, { force: true });
    }
    // (Not every platform can sync a directory.)
    await this.moduleDirSync.sync().catch(() => {});
    // Another process of the server may have collected the module meanwhile: file and record change under the write lock.
    this.transaction(() => {
      // (Its size is enough here: it is the file just written, or gone.)
      if (!this.storedSize(hash, bytes.byteLength)) this.writeModuleFile(hash, bytes);
      this.stmt('INSERT OR IGNORE INTO module (hash, size, created) VALUES (?, ?, ?)').run(hash, bytes.byteLength, Date.now());
    });
  }


  private storedSize(hash: string, size: number): boolean {
    try {
      return statSync(this.modulePath(hash)).size === size;
    } catch {
      return false;
    }
  }

  private storedIntact(hash: string, size: number): boolean {
    try {
      return statSync(this.modulePath(hash)).size === size && sha256(new Uint8Array(readFileSync(this.modulePath(hash)))) === hash;
    } catch {
      return false;
    }
  }

  private writeModuleFile(hash: string, bytes: Uint8Array): void {
    const file = this.modulePath(hash);
    rmSync(file, { force: true });
    const tmp = temporaryPath(this.moduleDir, hash);
    const fd = openSync(tmp, 'w', 0o400);
    try {
      for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    syncDir(this.moduleDir);
  }

  /** Run `work` as one write transaction (other processes' writes wait for it). */
  private transaction<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Record a module file written elsewhere with the same care as
   * putModule (a hibernation snapshot a worker process wrote).
   */
  adoptModule(hash: string, size: number): void {
    this.stmt('INSERT OR IGNORE INTO module (hash, size, created) VALUES (?, ?, ?)').run(hash, size, Date.now());
  }

  /** Remove every module nobody refers to (what an earlier run kept in its cache of unpinned modules), stored before `olderThan`; returns how many. */
  collectUnreferenced(olderThan = Infinity): number {
    const rows = this.stmt(
      `SELECT hash FROM module WHERE created < ? AND NOT EXISTS (SELECT 1 FROM pin WHERE pin.module = module.hash)
         AND NOT EXISTS (SELECT 1 FROM instance WHERE instance.module = module.hash OR instance.checkpoint = module.hash)
         AND NOT EXISTS (SELECT 1 FROM source_sha256 WHERE source_sha256.module = module.hash)`,
    ).all(olderThan === Infinity ? Number.MAX_SAFE_INTEGER : olderThan) as { hash: string }[];
    let n = 0;
    for (const { hash } of rows) if (this.collectModule(hash)) n++;
    return n;
  }

  /** Forget which source URIs named a module (a cache entry), so that it can be collected. */
  forgetSources(hash: string): void {
    this.stmt('DELETE FROM source_sha256 WHERE module = ?').run(hash);
  }

  /** Whether a principal has anything here (a pin or an instance). */
  knowsPrincipal(principal: string): boolean {
    return (
      this.stmt('SELECT 1 FROM pin WHERE principal = ? LIMIT 1').get(principal) !== undefined ||
      this.stmt('SELECT 1 FROM instance WHERE principal = ? LIMIT 1').get(principal) !== undefined
    );
  }

  /** Remove a module nobody refers to (no pin, no instance, no checkpoint). */
  collectModule(hash: string): boolean {
    // Checked and removed under the write lock: a pin or a record written by another process meanwhile keeps it.
    return this.transaction(() => {
      const used =
        this.stmt('SELECT 1 FROM pin WHERE module = ? LIMIT 1').get(hash) ??
        this.stmt('SELECT 1 FROM instance WHERE module = ? OR checkpoint = ? LIMIT 1').get(hash, hash) ??
        this.stmt('SELECT 1 FROM source_sha256 WHERE module = ? LIMIT 1').get(hash);
      if (used) return false;
      this.stmt('DELETE FROM module WHERE hash = ?').run(hash);
      try {
        unlinkSync(this.modulePath(hash));
      } catch {
        // already gone
      }
      return true;
    });
  }

  /** Modules nobody refers to, the oldest first, with their size and when they were stored (ms). */
  unreferencedModules(): { hash: string; size: number; created: number }[] {
    return this.stmt(
      `SELECT hash, size, created FROM module WHERE NOT EXISTS (SELECT 1 FROM pin WHERE pin.module = module.hash)
         AND NOT EXISTS (SELECT 1 FROM instance WHERE instance.module = module.hash OR instance.checkpoint = module.hash)
         AND NOT EXISTS (SELECT 1 FROM source_sha256 WHERE source_sha256.module = module.hash)
       ORDER BY created`,
    ).all() as { hash: string; size: number; created: number }[];
  }

  /** One instance's record. */
  instance(principal: string, id: string): InstanceRecord | undefined {
    return this.instances(principal, id)[0];
  }

  // Pins.

  pinTags(principal: string, hash: string): string[] | undefined {
    const row = this.stmt('SELECT tags FROM pin WHERE principal = ? AND module = ?').get(principal, hash) as { tags: string } | undefined;
    return row ? (JSON.parse(row.tags) as string[]) : undefined;
  }

  pinCount(principal: string): number {
    return (this.stmt('SELECT count(*) AS n FROM pin WHERE principal = ?').get(principal) as { n: number }).n;
  }

  /** Pin (or re-tag): whether something changed, or `missing` when the module is not stored (another process collected it). */
  pin(principal: string, hash: string, tags: string[]): boolean | 'missing' {
    const old = this.pinTags(principal, hash);
    if (old && (tags.length === 0 || sameList(old, tags))) return false;
    const changes = this.stmt(
      `INSERT INTO pin (principal, module, tags, created) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM module WHERE hash = ?)
       ON CONFLICT (principal, module) DO UPDATE SET tags = excluded.tags`,
    ).run(principal, hash, JSON.stringify(tags), Date.now(), hash).changes;
    return Number(changes) > 0 ? true : 'missing';
  }

  unpin(principal: string, hash: string): boolean {
    return Number(this.stmt('DELETE FROM pin WHERE principal = ? AND module = ?').run(principal, hash).changes) > 0;
  }

  pins(principal: string): { module: string; tags: string[] }[] {
    const rows = this.stmt('SELECT module, tags FROM pin WHERE principal = ? ORDER BY module').all(principal) as { module: string; tags: string }[];
    return rows.map((r) => ({ module: r.module, tags: JSON.parse(r.tags) as string[] }));
  }

  // Instances.

  putInstance(r: InstanceRecord): void {
    this.stmt(
      `INSERT INTO instance (principal, id, module, function, status, tags, checkpoint, resume, created, hibernation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (principal, id) DO UPDATE SET module = excluded.module, function = excluded.function,
         status = excluded.status, tags = excluded.tags, checkpoint = excluded.checkpoint, resume = excluded.resume,
         hibernation = excluded.hibernation`,
    ).run(
      r.principal,
      r.id,
      r.module,
      r.function,
      JSON.stringify(r.status),
      JSON.stringify(r.tags),
      r.checkpoint,
      r.resume ? 1 : 0,
      r.created,
      r.hibernation ? JSON.stringify(r.hibernation) : null,
    );
  }

  deleteInstance(principal: string, id: string): void {
    this.stmt('DELETE FROM instance WHERE principal = ? AND id = ?').run(principal, id);
  }

  /** The instance records: all of them, a principal's, or one instance of a principal (by the table's key, not a scan). */
  instances(principal?: string, id?: string): InstanceRecord[] {
    const rows = (
      principal === undefined
        ? this.stmt('SELECT * FROM instance').all()
        : id === undefined
          ? this.stmt('SELECT * FROM instance WHERE principal = ?').all(principal)
          : this.stmt('SELECT * FROM instance WHERE principal = ? AND id = ?').all(principal, id)
    ) as Record<string, string | number | null>[];
    return rows.map((r) => ({
      principal: r.principal as string,
      id: r.id as string,
      module: r.module as string,
      function: r.function as string,
      status: JSON.parse(r.status as string) as Status,
      tags: JSON.parse(r.tags as string) as string[],
      checkpoint: (r.checkpoint as string | null) ?? null,
      resume: r.resume === 1,
      created: r.created as number,
      hibernation: r.hibernation ? (JSON.parse(r.hibernation as string) as InstanceRecord['hibernation']) : null,
    }));
  }

  // Nonces (auth.md §11).

  check(key: Uint8Array, nonce: string, expires: number): boolean {
    const now = Math.floor(Date.now() / 1000);
    this.stmt('DELETE FROM nonce WHERE expire < ?').run(now);
    const r = this.stmt('INSERT OR IGNORE INTO nonce (scope, nonce, expire) VALUES (?, ?, ?)').run(key, nonce, expires);
    return Number(r.changes) === 1;
  }

  // Source cache.

  recordSource(uri: string, hash: string): void {
    this.stmt('INSERT OR IGNORE INTO source_sha256 (source, module) VALUES (?, ?)').run(uri, hash);
  }
}

/** A module file whose content does not match its name. */
export class ModuleCorruptError extends Error {
  readonly code = 'ERR_MODULE_CORRUPT';
  constructor(hash: string) {
    super(`module file ${hash} is damaged: its content does not match its hash`);
    this.name = 'ModuleCorruptError';
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can sync a directory.
  }
}
