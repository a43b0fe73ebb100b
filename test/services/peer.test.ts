// The peer service between two program instances (guest/services/peer.c),
// including suspension, snapshot and restore of either side mid-conversation.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BroadcastPeerHub, PeerHub, createPeerService } from '../../src/services/peer.ts';
import { Registry } from '../../src/services/registry.ts';
import { contextFor, migrate, start } from './helpers.ts';

const HALTED = { state: 'HALTED', cause: 'NORMAL', result: 0 };
const ALICE = 'ed25519:' + 'A'.repeat(43);
const BOB = 'ed25519:' + 'B'.repeat(43);

const ECHOER_LOG = 'joined\naccepted\nechoed=msg0\nechoed=msg1\nechoed=msg2\ndone\n';
const CALLER_LOG = 'connected\necho=msg0\necho=msg1\necho=msg2\ndone\n';

function registry(hub: PeerHub): Registry {
  return new Registry().register(createPeerService(hub));
}

describe('peer', () => {
  it('two instances of one principal discover each other and talk', async () => {
    const r = registry(new PeerHub());
    const b = await start('peer', 'echoer', r, contextFor(ALICE));
    await b.logged('joined\n');
    const a = await start('peer', 'caller', r, contextFor(ALICE));
    assert.deepEqual(await a.done, HALTED);
    assert.deepEqual(await b.done, HALTED);
    assert.equal(a.log(), CALLER_LOG);
    assert.equal(b.log(), ECHOER_LOG);
  });

  it('other principals are invisible unless both join as public', async () => {
    const r = registry(new PeerHub());
    const b = await start('peer', 'echoer', r, contextFor(BOB));
    await b.logged('joined\n');
    const lonely = await start('peer', 'caller_public', r, contextFor(ALICE));
    assert.deepEqual(await lonely.done, HALTED);
    assert.equal(lonely.log(), 'no peers\n'); // bob is not public
    const anon = await start('peer', 'caller', r, contextFor());
    await anon.done;
    assert.equal(anon.log(), 'no peers\n');
    b.program.kill();
    await b.done;

    const pb = await start('peer', 'echoer_public', r, contextFor(BOB));
    await pb.logged('joined\n');
    const pa = await start('peer', 'caller_public', r, contextFor(ALICE));
    assert.deepEqual(await pa.done, HALTED);
    assert.deepEqual(await pb.done, HALTED);
    assert.equal(pa.log(), CALLER_LOG);
  });

  it('messages survive suspend, snapshot and restore of either side', async () => {
    const hub = new PeerHub();
    const r = registry(hub);
    const b = await start('peer', 'echoer', r, contextFor(ALICE));
    await b.logged('joined\n');
    const a = await start('peer', 'caller', r, contextFor(ALICE));

    // The echoer leaves as soon as the link exists: what the caller sends
    // meanwhile waits in the caller's outbox (or was queued for the echoer
    // and is saved with it).
    await b.logged('accepted\n');
    const movedB = await migrate(b, r);
    assert.ok(movedB.snapshot.length > 0);

    // Then the caller leaves after its first echo, while the echoer works.
    await a.logged('echo=msg0\n');
    const movedA = await migrate(a, r);

    assert.deepEqual(await movedA.restored.done, HALTED);
    assert.deepEqual(await movedB.restored.done, HALTED);
    assert.equal(a.log() + movedA.restored.log(), CALLER_LOG);
    assert.equal(b.log() + movedB.restored.log(), ECHOER_LOG);
  });

  it('works across hubs of one broadcast channel (worker threads), and an instance may move between them', async () => {
    const channel = `gate-peer-test-${crypto.randomUUID()}`;
    const hub1 = new BroadcastPeerHub(channel);
    const hub2 = new BroadcastPeerHub(channel);
    try {
      const b = await start('peer', 'echoer', registry(hub1), contextFor(ALICE));
      await b.logged('joined\n');
      // The other hub learns of the echoer asynchronously.
      while (hub2.info(b.context.instance) === undefined) await new Promise((r) => setTimeout(r, 1));
      const a = await start('peer', 'caller', registry(hub2), contextFor(ALICE));
      await b.logged('accepted\n');
      // The echoer resumes on the caller's thread.
      const movedB = await migrate(b, registry(hub2));
      assert.deepEqual(await a.done, HALTED);
      assert.deepEqual(await movedB.restored.done, HALTED);
      assert.equal(a.log(), CALLER_LOG);
      assert.equal(b.log() + movedB.restored.log(), ECHOER_LOG);
    } finally {
      hub1.close();
      hub2.close();
    }
  });
});
