// The peer service across the servers of a cluster: two "servers" (each a
// peer hub on a BroadcastChannel of its own, as a server's threads and
// worker processes share one, and the server's bridge to PostgreSQL) whose
// programs (guest/services/peer.c) find each other and talk through a real
// PostgreSQL (skipped, saying why, without it), across a suspension,
// snapshot and restore of each side, and after the echoer moves from one
// server to the other.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PeerBridge } from '../../src/server/api/peer-bridge.ts';
import { PgPeerRelay } from '../../src/server/store/pg-peer-relay.ts';
import { BroadcastPeerHub, createPeerService } from '../../src/services/peer.ts';
import { Registry } from '../../src/services/registry.ts';
import { postgresMissing, startPostgres, type Postgres } from '../postgres.ts';
import { contextFor, migrate, start } from '../services/helpers.ts';
import { ensureSchemaAt } from './cluster-schema.ts';

const HALTED = { state: 'HALTED', cause: 'NORMAL', result: 0 };
const ALICE = 'ed25519:' + 'A'.repeat(43);
const ECHOER_LOG = 'joined\naccepted\nechoed=msg0\nechoed=msg1\nechoed=msg2\ndone\n';
const CALLER_LOG = 'connected\necho=msg0\necho=msg1\necho=msg2\ndone\n';

interface Server {
  hub: BroadcastPeerHub;
  registry: Registry;
  close(): Promise<void>;
}

const missing = postgresMissing();

if (missing) {
  it.skip(`cluster peers (${missing})`);
} else {
  describe('cluster: peers on different servers', () => {
    let pg: Postgres;
    let url: string;
    let n = 0;
    const warnings: string[] = [];
    before(async () => {
      pg = await startPostgres();
      url = await pg.createDatabase();
      await ensureSchemaAt(url);
    });
    after(() => pg?.stop());

    /** A server's peer hub and its bridge, on a channel no other test server shares. */
    async function server(): Promise<Server> {
      const channel = `gate-peer-cluster-${process.pid}-${++n}`;
      const bridge = await PeerBridge.open(channel, url, `server${n}`, (m) => warnings.push(m));
      const hub = new BroadcastPeerHub(channel);
      return {
        hub,
        registry: new Registry().register(createPeerService(hub)),
        async close() {
          hub.close();
          await bridge.close();
        },
      };
    }

    /** An echoer on server a, and a caller on server b linked to it. */
    async function connect(a: Server, b: Server) {
      const echoer = await start('peer', 'echoer', a.registry, contextFor(ALICE));
      await echoer.logged('joined\n');
      // B's hub hears of the echoer through PostgreSQL.
      while (b.hub.info(echoer.context.instance) === undefined) await new Promise((r) => setTimeout(r, 5));
      const caller = await start('peer', 'caller', b.registry, contextFor(ALICE));
      await echoer.logged('accepted\n');
      return { echoer, caller };
    }

    it('relays messages in order, large ones (stored in a table) among small ones, bytes intact', async () => {
      const got: unknown[] = [];
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      const receiver = await PgPeerRelay.open(url, 'receiver', (m) => got.push(m) === 4 && done(), (m) => warnings.push(m));
      const sender = await PgPeerRelay.open(url, 'sender', () => assert.fail('a server hears itself'), (m) => warnings.push(m));
      const big = new Uint8Array(20_000).map((_, i) => i % 251);
      const sent = [{ n: 1 }, { n: 2, data: big }, { n: 3, data: new Uint8Array([1, 2, 3]) }, { n: 4 }];
      for (const m of sent) sender.send(m);
      await all;
      assert.deepEqual(got, sent);
      await sender.close();
      await receiver.close();
      assert.deepEqual(warnings, []);
    });

    it('exchange messages in order across a suspension of each side', async () => {
      const a = await server();
      const b = await server();
      try {
        const { echoer, caller } = await connect(a, b);
        const movedEchoer = await migrate(echoer, a.registry);
        await caller.logged('echo=msg0\n');
        const movedCaller = await migrate(caller, b.registry);
        assert.deepEqual(await movedCaller.restored.done, HALTED);
        assert.deepEqual(await movedEchoer.restored.done, HALTED);
        assert.equal(caller.log() + movedCaller.restored.log(), CALLER_LOG);
        assert.equal(echoer.log() + movedEchoer.restored.log(), ECHOER_LOG);
        assert.deepEqual(warnings, []);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('keep talking when one moves to the other server mid-conversation', async () => {
      const a = await server();
      const b = await server();
      try {
        const { echoer, caller } = await connect(a, b);
        // The echoer resumes on the caller's server.
        const moved = await migrate(echoer, b.registry);
        assert.deepEqual(await caller.done, HALTED);
        assert.deepEqual(await moved.restored.done, HALTED);
        assert.equal(caller.log(), CALLER_LOG);
        assert.equal(echoer.log() + moved.restored.log(), ECHOER_LOG);
        assert.deepEqual(warnings, []);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
