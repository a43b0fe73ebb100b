// The PostgreSQL schema of a cluster's shared inventory, in its own schema
// `gate`, created by the first server that connects (under an advisory lock,
// so that servers starting together do not race) and checked by the others.
// Foreign keys make "bytes before any record refers to them" hold across
// servers: a module still referred to cannot be deleted, a record cannot
// refer to a module that is not there.

import type pg from 'pg';

/** Bump when the tables change incompatibly; a server refuses another version. */
export const SCHEMA_VERSION = 1;

const TABLES = `
CREATE SCHEMA IF NOT EXISTS gate;
CREATE TABLE IF NOT EXISTS gate.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS gate.module (
  hash text PRIMARY KEY, size bigint NOT NULL, bytes bytea NOT NULL, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS gate.pin (
  principal text NOT NULL, module text NOT NULL REFERENCES gate.module (hash), tags jsonb NOT NULL,
  created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (principal, module));
CREATE INDEX IF NOT EXISTS pin_module ON gate.pin (module);
CREATE TABLE IF NOT EXISTS gate.server (
  id text PRIMARY KEY, started timestamptz NOT NULL DEFAULT now(), expires timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS gate.instance (
  principal text NOT NULL, id text NOT NULL,
  module text NOT NULL REFERENCES gate.module (hash), function text NOT NULL,
  status jsonb NOT NULL, tags jsonb NOT NULL,
  checkpoint text REFERENCES gate.module (hash), checkpointed timestamptz,
  resume boolean NOT NULL, created bigint NOT NULL,
  owner text, note text NOT NULL DEFAULT '',
  PRIMARY KEY (principal, id));
CREATE INDEX IF NOT EXISTS instance_owner ON gate.instance (owner);
CREATE INDEX IF NOT EXISTS instance_module ON gate.instance (module);
CREATE INDEX IF NOT EXISTS instance_checkpoint ON gate.instance (checkpoint);
CREATE TABLE IF NOT EXISTS gate.source (source text PRIMARY KEY, module text NOT NULL REFERENCES gate.module (hash));
CREATE INDEX IF NOT EXISTS source_module ON gate.source (module);
CREATE TABLE IF NOT EXISTS gate.peer_message (
  seq bigserial PRIMARY KEY, target text NOT NULL, body bytea NOT NULL, created timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS peer_message_target ON gate.peer_message (target, seq);
`;

/** Create the schema if it is missing; fail, saying why, when it is of another version. */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query("SELECT pg_advisory_xact_lock(hashtext('gate-ts schema'))");
    await c.query(TABLES);
    await c.query("INSERT INTO gate.meta (key, value) VALUES ('schema', $1) ON CONFLICT (key) DO NOTHING", [String(SCHEMA_VERSION)]);
    const { rows } = await c.query<{ value: string }>("SELECT value FROM gate.meta WHERE key = 'schema'");
    await c.query('COMMIT');
    if (rows[0]?.value !== String(SCHEMA_VERSION)) {
      throw new Error(`the database holds gate-ts schema version ${rows[0]?.value}, this server uses ${SCHEMA_VERSION}`);
    }
  } catch (error) {
    await c.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    c.release();
  }
}
