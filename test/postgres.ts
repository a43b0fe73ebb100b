// A real PostgreSQL for the cluster tests: Debian's `postgresql` (initdb and
// postgres found on PATH or under /usr/lib/postgresql/*/bin), a cluster
// initialized into a temporary directory as the `postgres` user when the
// tests run as root, trust authentication, a free loopback port. Without
// PostgreSQL the tests are skipped with a line saying how to get it, unless
// GATE_REQUIRE_POSTGRES=1 (CI), where its absence fails them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Postgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  /** A new empty database on this server; its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** The directory of initdb and postgres, or undefined. */
function binDir(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':');
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) dirs.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // not Debian's layout
  }
  return dirs.find((d) => d && existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'postgres')));
}

/** Why PostgreSQL cannot run here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (binDir()) return undefined;
  const why = 'no PostgreSQL (initdb, postgres) found: install it (apt-get install postgresql) to run the cluster tests';
  if (process.env.GATE_REQUIRE_POSTGRES === '1') throw new Error(`${why} (GATE_REQUIRE_POSTGRES=1 requires them)`);
  return why;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Start a throwaway PostgreSQL server; stop() removes it and its files. */
export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  if (!bin) throw new Error(postgresMissing() ?? 'no PostgreSQL');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-pg-'));
  const data = path.join(dir, 'data');
  // PostgreSQL refuses to run as root: run it as `postgres`, which then owns the directory.
  const asUser: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    asUser.uid = id('-u');
    asUser.gid = id('-g');
    if (!Number.isInteger(asUser.uid) || !Number.isInteger(asUser.gid)) throw new Error('running as root but there is no postgres user');
    chownSync(dir, asUser.uid, asUser.gid);
  }
  chmodSync(dir, 0o700);
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
    ...asUser,
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const child: ChildProcess = spawn(
    path.join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200'],
    { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitReady(port, exited, () => stderr);
  let databases = 0;
  return {
    url,
    async createDatabase() {
      const name = `gate_test_${++databases}`;
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      // SIGINT: fast shutdown (connections are cut, nothing waits for clients).
      child.kill('SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Until the server accepts a query (it takes a moment after the port opens). */
async function waitReady(port: number, exited: Promise<void>, stderr: () => string): Promise<void> {
  const { default: pg } = await import('pg');
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; ; i++) {
    if (gone) throw new Error(`postgres exited: ${stderr()}`);
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch {
      await c.end().catch(() => {});
      if (i > 300) throw new Error(`postgres did not start: ${stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
