// Several gate-servers on one PostgreSQL (docs/cluster.md), over loopback,
// against a PostgreSQL started for the run (test/postgres.ts; skipped with
// a row saying why without one):
// - a call of a module pinned through server A, through A and through B;
// - an instance's info through its owner and through another server (which
//   reads the shared record), and moving a suspended instance between the
//   servers (the request through the other server that makes it move);
// - failover: from kill -9 of the server running a checkpointed instance to
//   its first output through the other server.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { note, summarize, type BenchOptions, type Row } from './lib.ts';
import { postgresMissing, startPostgres } from '../test/postgres.ts';
import { Client, ioLines, Principal, startTestServer, wasm } from '../test/server/helpers.ts';
import { client, startProcess } from '../test/server/processes.ts';

const GROUP = 'cluster';

async function samples(n: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

function row(name: string, ms: number[], extra?: string): Row {
  const s = summarize(ms);
  return { group: GROUP, name, value: s.median, unit: 'ms', note: note(s.note, extra) };
}

async function expectOk(r: Promise<{ status: number; text: string }>): Promise<void> {
  const { status, text } = await r;
  if (status !== 200) throw new Error(`${status} ${text}`);
}

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  let missing: string | undefined;
  try {
    missing = postgresMissing();
  } catch (error) {
    missing = (error as Error).message;
  }
  if (missing) return [{ group: GROUP, name: 'skipped', value: 0, unit: '', note: missing }];
  const pg = await startPostgres();
  const rows: Row[] = [];
  try {
    const config = { log: { level: 'error' as const }, database: { url: await pg.createDatabase(), lease: 1 }, runtime: { workers: 0 } };
    const a = await startTestServer(config);
    const b = await startTestServer(config);
    try {
      const alice = new Principal();
      const onA = new Client(a, alice);
      const onB = new Client(b, alice);
      const hello = await onA.upload(wasm('examples/hello.wasm'));
      const n = quick ? 5 : 100;
      progress('calls through the server that pinned the module and through another');
      const call = (c: Client) => expectOk(c.post(`/gate-0/module/sha256/${hello}?action=call&function=greet`));
      await call(onB);
      rows.push(row('call of a pinned module, through A (pinned there)', await samples(n, () => call(onA))));
      rows.push(row('the same through B', await samples(n, () => call(onB)), 'module bytes and pin from PostgreSQL'));

      progress('instance info and moves');
      const counter = await onA.upload(wasm('examples/counter.wasm'));
      const id = await onA.launch(counter, '&action=suspend');
      const info = (c: Client) => expectOk(c.post(`/gate-0/instance/${id}`));
      rows.push(row('instance info through its owner', await samples(n, () => info(onA))));
      rows.push(row('instance info through another server', await samples(n, () => info(onB)), 'from the shared record'));
      const wait = (c: Client) => expectOk(c.post(`/gate-0/instance/${id}?action=wait`));
      rows.push(row('instance wait through its owner', await samples(n, () => wait(onA))));
      const moves = await samples(quick ? 4 : 40, (i) => wait(i % 2 === 0 ? onB : onA));
      rows.push(row('instance wait through another server (moves it there)', moves, 'suspended counter.wasm: checkpoint, handover, restore'));
    } finally {
      await a.close();
      await b.close();
    }

    progress('failover after kill -9');
    const failovers: number[] = [];
    for (let i = 0; i < (quick ? 1 : 3); i++) failovers.push(await failover(await pg.createDatabase()));
    rows.push(row('failover: kill -9 of the owner → first output through another server', failovers, 'database.lease = 1 s, runtime.checkpoint = 1 s'));
  } finally {
    await pg.stop();
  }
  return rows;
}

/** Milliseconds from kill -9 of the server running an instance to its first output through another. */
async function failover(database: string): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-cluster-'));
  const options = ['--database', database, '-o', 'database.lease=1', '-o', 'runtime.checkpoint=1', '-o', 'log.level=error'];
  const procA = await startProcess(dir, ...options);
  const b = await startTestServer({ log: { level: 'error' }, database: { url: database, lease: 1 }, runtime: { workers: 0 } });
  try {
    const alice = new Principal();
    const onA = client(procA.url, alice);
    const counter = await onA.upload(wasm('examples/counter.wasm'));
    const id = await onA.launch(counter, '&function=count');
    await ioLines(onA, id, /\n3\n/);
    // A checkpoint is written every second.
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = performance.now();
    procA.child.kill('SIGKILL');
    await procA.exited;
    await ioLines(new Client(b, alice), id, /\n/);
    return performance.now() - t0;
  } finally {
    procA.child.kill('SIGKILL');
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
