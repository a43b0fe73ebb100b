// The inventory's contract, the same for the embedded store (node:sqlite)
// and the shared one (PostgreSQL): modules, pins, instance records and
// their ownership. The PostgreSQL half runs against a real server started
// here (skipped, saying why, when PostgreSQL is not installed).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Store } from '../../src/server/store/store.ts';
import type { InstanceRecord, Inventory } from '../../src/server/store/inventory.ts';
import { Membership } from '../../src/server/store/pg-membership.ts';
import { SqliteInventory } from '../../src/server/store/sqlite-inventory.ts';
import { postgresMissing, startPostgres, type Postgres } from '../postgres.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const hashOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function record(id: string, module: string, checkpoint: string | null = null): InstanceRecord {
  return { principal: 'p', id, module, function: '', status: { state: 'RUNNING', cause: 'NORMAL', result: 0 }, tags: ['t'], checkpoint, resume: false, created: 1 };
}

function contract(name: string, open: () => Promise<{ inventory: Inventory; close(): Promise<void> }>) {
  describe(`inventory: ${name}`, () => {
    let inv: Inventory;
    let close: () => Promise<void>;
    before(async () => ({ inventory: inv, close } = await open()));
    after(() => close());

    it('stores module bytes by hash and reads them back checked', async () => {
      const b = bytes(`module of ${name}`);
      const h = hashOf(b);
      assert.equal(await inv.hasModule(h), false);
      await inv.putModule(h, b);
      await inv.putModule(h, b);
      assert.equal(await inv.hasModule(h), true);
      assert.equal(await inv.moduleSize(h), b.byteLength);
      assert.deepEqual([...(await inv.readModule(h))], [...b]);
      assert.equal(await inv.collectModule(h), true);
      assert.equal(await inv.hasModule(h), false);
    });

    it('pins with tags; a module pinned or used by an instance is not collected', async () => {
      const b = bytes(`pinned of ${name}`);
      const h = hashOf(b);
      await inv.putModule(h, b);
      assert.equal(await inv.knowsPrincipal('p'), false);
      assert.equal(await inv.pin('p', h, ['a']), true);
      assert.equal(await inv.pin('p', h, []), false);
      assert.equal(await inv.pin('p', h, ['a']), false);
      assert.deepEqual(await inv.pinTags('p', h), ['a']);
      assert.equal(await inv.pinCount('p'), 1);
      assert.deepEqual(await inv.pins('p'), [{ module: h, tags: ['a'] }]);
      assert.equal(await inv.knowsPrincipal('p'), true);
      assert.equal(await inv.collectModule(h), false);
      assert.equal(await inv.unpin('p', h), true);
      assert.equal(await inv.unpin('p', h), false);

      const c = bytes(`checkpoint of ${name}`);
      const ch = hashOf(c);
      await inv.putModule(ch, c);
      assert.equal(await inv.putInstance(record('i1', h, ch), 'A'), true);
      assert.equal(await inv.collectModule(h), false);
      assert.equal(await inv.collectModule(ch), false);
      assert.equal(await inv.collectUnreferenced(Date.now() + 60_000), 0);
      const got = await inv.instance('p', 'i1');
      assert.equal(got?.module, h);
      assert.equal(got?.checkpoint, ch);
      assert.deepEqual(got?.status, { state: 'RUNNING', cause: 'NORMAL', result: 0 });
      assert.deepEqual(got?.tags, ['t']);
      assert.deepEqual((await inv.principalInstances('p')).map((r) => r.id), ['i1']);
      assert.equal(await inv.deleteInstance('p', 'i1', 'A'), true);
      assert.equal(await inv.collectUnreferenced(Date.now() + 60_000), 2);
    });

    it('keeps the modules a source named until it forgets them', async () => {
      const b = bytes(`source of ${name}`);
      const h = hashOf(b);
      await inv.putModule(h, b);
      await inv.recordSource('/src/x', h);
      assert.equal(await inv.collectModule(h), false);
      await inv.forgetSources(h);
      assert.equal(await inv.collectModule(h), true);
    });
  });
}

contract('node:sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-inventory-'));
  const store = new Store(dir);
  return {
    inventory: new SqliteInventory(store),
    async close() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const missing = postgresMissing();
if (missing) {
  it.skip(`inventory: PostgreSQL (${missing})`);
} else {
  let pg: Postgres;
  const cluster = async (id: string, url: string) => Membership.join({ url, id, lease: 1 });
  contract('PostgreSQL', async () => {
    pg = await startPostgres();
    const m = await cluster('A', await pg.createDatabase());
    return {
      inventory: m.inventory,
      async close() {
        await m.close();
        await pg.stop();
      },
    };
  });

  describe('inventory: PostgreSQL ownership', () => {
    let pg2: Postgres;
    let url: string;
    before(async () => {
      pg2 = await startPostgres();
      url = await pg2.createDatabase();
    });
    after(() => pg2.stop());

    it('lets only the owner write a record, and a live server take over a dead one', async () => {
      const a = await cluster('A', url);
      const b = await cluster('B', url);
      const m = bytes('owned');
      const h = hashOf(m);
      await a.inventory.putModule(h, m);
      assert.equal(await a.inventory.putInstance(record('x', h), 'A'), true);
      assert.equal(await b.inventory.putInstance(record('x', h), 'B'), false, 'B does not own it');
      assert.equal(await b.inventory.deleteInstance('p', 'x', 'B'), false);
      assert.equal((await a.inventory.instance('p', 'x'))?.owner, 'A');

      const adopted = new Promise<string[]>((resolve) => {
        void b.start({
          adopt: (records) => resolve(records.map((r) => `${r.id}: ${r.note}`)),
          leaseLost: () => {},
          message: () => {},
          warn: () => {},
        });
      });
      // A stops without a word (its lease just runs out).
      await a.close(false);
      const notes = await adopted;
      assert.equal(notes.length, 1);
      assert.match(notes[0], /^x: taken over from server A .*no checkpoint/);
      assert.equal((await b.inventory.instance('p', 'x'))?.owner, 'B');
      assert.deepEqual((await b.inventory.ownedInstances('B')).map((r) => r.id), ['x']);
      await b.close();
    });

    it('carries messages between servers as notifications', async () => {
      const a = await cluster('A2', url);
      const b = await cluster('B2', url);
      let received!: (body: Record<string, unknown>) => void;
      const got = new Promise<Record<string, unknown>>((resolve) => (received = resolve));
      await b.start({ adopt: () => {}, leaseLost: () => {}, message: (body) => received(body), warn: () => {} });
      await a.send('B2', { op: 'hello', n: 1 });
      assert.deepEqual(await got, { op: 'hello', n: 1 });
      await a.close();
      await b.close();
    });
  });
}
