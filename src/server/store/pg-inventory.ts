// The shared inventory of a cluster, in PostgreSQL: module bytes (bytea,
// content-addressed), pins, instance records with their owner server, the
// source cache. Every server of the cluster reads and writes the same rows,
// so what one server stored is there for the next request to any other.
//
// Module bytes live in the database rather than in a shared directory: the
// servers then need nothing shared but the database, and the foreign keys
// keep every record's module present in the same transaction system.

import { createHash } from 'node:crypto';
import pg from 'pg';
import { ModuleCorruptError } from './store.ts';
import type { InstanceRecord, Inventory, OwnedInstanceRecord } from './inventory.ts';

/** PostgreSQL's code for a foreign key violation. */
const FOREIGN_KEY_VIOLATION = '23503';

const INSTANCE_COLUMNS = `principal, id, module, function, status, tags, checkpoint,
  (extract(epoch FROM checkpointed) * 1000)::float8 AS checkpointed, resume, created::float8 AS created, owner, note`;

const UNREFERENCED = `NOT EXISTS (SELECT 1 FROM gate.pin WHERE pin.module = m.hash)
  AND NOT EXISTS (SELECT 1 FROM gate.instance WHERE instance.module = m.hash OR instance.checkpoint = m.hash)
  AND NOT EXISTS (SELECT 1 FROM gate.source WHERE source.module = m.hash)`;

/** A row as INSTANCE_COLUMNS select it (jsonb parsed, times in ms). */
type InstanceRow = OwnedInstanceRecord;

export class PgInventory implements Inventory {
  readonly shared = true;
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  private async rows<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
    return (await this.pool.query<T>(sql, values)).rows;
  }

  private async changed(sql: string, values: unknown[]): Promise<boolean> {
    return ((await this.pool.query(sql, values)).rowCount ?? 0) > 0;
  }

  async hasModule(hash: string): Promise<boolean> {
    return (await this.rows('SELECT 1 FROM gate.module WHERE hash = $1', [hash])).length > 0;
  }

  async moduleSize(hash: string): Promise<number | undefined> {
    const [row] = await this.rows<{ size: number }>('SELECT size::float8 AS size FROM gate.module WHERE hash = $1', [hash]);
    return row?.size;
  }

  async adoptModule(): Promise<void> {
    throw new Error('servers of a cluster do not hibernate instances (their snapshots would be files of one server)');
  }

  async readModule(hash: string): Promise<Uint8Array> {
    const [row] = await this.rows<{ bytes: Buffer }>('SELECT bytes FROM gate.module WHERE hash = $1', [hash]);
    if (!row) throw new Error(`module ${hash} is not stored`);
    const bytes = new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
    if (createHash('sha256').update(bytes).digest('hex') !== hash) throw new ModuleCorruptError(hash);
    return bytes;
  }

  async putModule(hash: string, bytes: Uint8Array): Promise<void> {
    // A damaged copy (its bytes no longer hash to its name) is replaced.
    await this.pool.query(
      `INSERT INTO gate.module AS m (hash, size, bytes) VALUES ($1, $2, $3)
       ON CONFLICT (hash) DO UPDATE SET bytes = excluded.bytes, size = excluded.size
       WHERE encode(sha256(m.bytes), 'hex') <> m.hash`,
      [hash, bytes.byteLength, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)],
    );
  }

  async collectModule(hash: string): Promise<boolean> {
    try {
      return await this.changed(`DELETE FROM gate.module m WHERE hash = $1 AND ${UNREFERENCED}`, [hash]);
    } catch (error) {
      // Referred to by a record written meanwhile by another server.
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) return false;
      throw error;
    }
  }

  async collectUnreferenced(olderThan: number): Promise<number> {
    const rows = await this.rows<{ hash: string }>(
      `SELECT hash FROM gate.module m WHERE created < to_timestamp($1 / 1000.0) AND ${UNREFERENCED}`,
      [olderThan],
    );
    let n = 0;
    for (const { hash } of rows) if (await this.collectModule(hash)) n++;
    return n;
  }

  async forgetSources(hash: string): Promise<void> {
    await this.pool.query('DELETE FROM gate.source WHERE module = $1', [hash]);
  }

  async recordSource(uri: string, hash: string): Promise<void> {
    await this.pool.query('INSERT INTO gate.source (source, module) VALUES ($1, $2) ON CONFLICT (source) DO NOTHING', [uri, hash]);
  }

  async knowsPrincipal(principal: string): Promise<boolean> {
    const rows = await this.rows(
      'SELECT 1 WHERE EXISTS (SELECT 1 FROM gate.pin WHERE principal = $1) OR EXISTS (SELECT 1 FROM gate.instance WHERE principal = $1)',
      [principal],
    );
    return rows.length > 0;
  }

  async pinTags(principal: string, hash: string): Promise<string[] | undefined> {
    const [row] = await this.rows<{ tags: string[] }>('SELECT tags FROM gate.pin WHERE principal = $1 AND module = $2', [principal, hash]);
    return row?.tags;
  }

  async pinCount(principal: string): Promise<number> {
    const [row] = await this.rows<{ n: number }>('SELECT count(*)::int AS n FROM gate.pin WHERE principal = $1', [principal]);
    return row.n;
  }

  async pin(principal: string, hash: string, tags: string[]): Promise<boolean> {
    // Re-pinning without tags keeps the old ones; the same tags change nothing.
    return this.changed(
      `INSERT INTO gate.pin AS p (principal, module, tags) VALUES ($1, $2, $3)
       ON CONFLICT (principal, module) DO UPDATE SET tags = excluded.tags
       WHERE jsonb_array_length(excluded.tags) > 0 AND p.tags <> excluded.tags`,
      [principal, hash, JSON.stringify(tags)],
    );
  }

  async unpin(principal: string, hash: string): Promise<boolean> {
    return this.changed('DELETE FROM gate.pin WHERE principal = $1 AND module = $2', [principal, hash]);
  }

  async pins(principal: string): Promise<{ module: string; tags: string[] }[]> {
    return this.rows('SELECT module, tags FROM gate.pin WHERE principal = $1 ORDER BY module', [principal]);
  }

  async putInstance(r: InstanceRecord, owner: string, checkpointed?: number): Promise<boolean> {
    return this.changed(
      `INSERT INTO gate.instance AS i (principal, id, module, function, status, tags, checkpoint, checkpointed, resume, created, owner)
       VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8 / 1000.0), $9, $10, $11)
       ON CONFLICT (principal, id) DO UPDATE SET module = excluded.module, function = excluded.function,
         status = excluded.status, tags = excluded.tags, checkpoint = excluded.checkpoint,
         checkpointed = coalesce(excluded.checkpointed, i.checkpointed), resume = excluded.resume, owner = excluded.owner
       WHERE i.owner = excluded.owner OR i.owner IS NULL`,
      [r.principal, r.id, r.module, r.function, JSON.stringify(r.status), JSON.stringify(r.tags), r.checkpoint, checkpointed ?? null, r.resume, r.created, owner],
    );
  }

  async deleteInstance(principal: string, id: string, owner: string): Promise<boolean> {
    return this.changed('DELETE FROM gate.instance WHERE principal = $1 AND id = $2 AND (owner = $3 OR owner IS NULL)', [principal, id, owner]);
  }

  async ownedInstances(owner: string): Promise<OwnedInstanceRecord[]> {
    return this.rows<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM gate.instance WHERE owner = $1`, [owner]);
  }

  async instance(principal: string, id: string): Promise<OwnedInstanceRecord | undefined> {
    const [row] = await this.rows<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM gate.instance WHERE principal = $1 AND id = $2`, [principal, id]);
    return row;
  }

  async principalInstances(principal: string): Promise<OwnedInstanceRecord[]> {
    return this.rows<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM gate.instance WHERE principal = $1 ORDER BY id`, [principal]);
  }

  /**
   * Give an instance `from` owns to `to` (a handover): its record, written
   * by `from` just before, names the new owner. False when `from` no longer
   * owns it.
   */
  async transferInstance(principal: string, id: string, from: string, to: string): Promise<boolean> {
    return this.changed('UPDATE gate.instance SET owner = $4 WHERE principal = $1 AND id = $2 AND owner = $3', [principal, id, from, to]);
  }

  /** Take the instances of a server whose lease has expired; `note` says what was lost. The records taken. */
  async takeOver(dead: string, to: string, note: (r: OwnedInstanceRecord) => string): Promise<OwnedInstanceRecord[]> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      // Only while the lease is still expired (its server did not come back meanwhile).
      const { rows: lease } = await c.query('SELECT 1 FROM gate.server WHERE id = $1 AND expires < now() FOR UPDATE', [dead]);
      if (lease.length === 0) {
        await c.query('ROLLBACK');
        return [];
      }
      const { rows } = await c.query<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM gate.instance WHERE owner = $1 FOR UPDATE`, [dead]);
      for (const r of rows) {
        r.note = note(r);
        r.owner = to;
        await c.query('UPDATE gate.instance SET owner = $3, note = $4 WHERE principal = $1 AND id = $2', [r.principal, r.id, to, r.note]);
      }
      await c.query('DELETE FROM gate.server WHERE id = $1', [dead]);
      await c.query('COMMIT');
      return rows;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    // The pool belongs to the cluster connection, which ends it.
  }
}
