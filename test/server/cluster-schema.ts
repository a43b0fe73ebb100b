// The cluster tables in a test database, as the first server would create them.

import pg from 'pg';
import { ensureSchema } from '../../src/server/store/pg-schema.ts';

export async function ensureSchemaAt(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url });
  try {
    await ensureSchema(pool);
  } finally {
    await pool.end();
  }
}
