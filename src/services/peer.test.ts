import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import { BroadcastPeerHub, PEER_MAX_CREDIT, PeerHub, bytesToUuid, createPeerService, uuidToBytes } from './peer.ts';
import type { PeerNetwork } from './peer-network.ts';
import { Harness, settle } from './servicetest.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

function ctx(instance: string, principal = 'p') {
  return { instance, principal, scope: [] };
}

const join = (h: Harness, flags = 0) => h.call(Uint8Array.of(0, flags));
const connect = (h: Harness, to: string) => h.call(Uint8Array.of(2, ...uuidToBytes(to)));
const bytes = (s: string) => new TextEncoder().encode(s);

/** Wait until h has sent n packets (delivery between hubs takes event loop turns). */
async function sent(h: Harness, n: number): Promise<void> {
  while (h.sent.length < n) await new Promise((r) => setTimeout(r, 1));
}

test('peer: join, list, connect; replies and the connected event', async () => {
  const svc = createPeerService(new PeerHub());
  const a = new Harness(svc, null, ctx(A));
  const b = new Harness(svc, null, ctx(B));
  a.call(Uint8Array.of(1)); // list before join
  assert.deepEqual(a.take(), [{ call: Uint8Array.of(1, 0, 0, 0), index: 0 }]);
  join(a);
  join(b);
  a.call(Uint8Array.of(1));
  connect(a, A);
  connect(a, B);
  connect(a, '00000000-0000-4000-8000-0000000000ff');
  a.call(Uint8Array.of(9));
  a.call(Uint8Array.of(2, 1));
  assert.deepEqual(a.take(), [
    { call: Uint8Array.of(0, 0), index: 0 },
    { call: Uint8Array.of(0, 0, 1, 0, ...uuidToBytes(B)), index: 0 },
    { call: Uint8Array.of(3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), index: 0 }, // self
    { call: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0), index: 0 }, // link 0
    { call: Uint8Array.of(2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), index: 0 }, // not found
    { call: new Uint8Array(0), index: 0 },
    { call: Uint8Array.of(4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), index: 0 }, // malformed
  ]);
  await settle();
  assert.deepEqual(b.take(), [
    { call: Uint8Array.of(0, 0), index: 0 },
    { info: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, ...uuidToBytes(A)) },
  ]);
  assert.equal(bytesToUuid(uuidToBytes(A)), A);
});

async function conversation(netA: PeerNetwork, netB: PeerNetwork): Promise<void> {
  const svcA = createPeerService(netA);
  const svcB = createPeerService(netB);
  const a = new Harness(svcA, null, ctx(A));
  const b = new Harness(svcB, null, ctx(B));
  join(a);
  join(b);
  await settle();
  connect(a, B);
  await sent(b, 2); // join reply, connected event
  a.take();
  b.take();
  b.flow([0, 10]);
  await sent(a, 1);
  assert.deepEqual(a.take(), [{ flow: [{ id: 0, value: 10 }] }]);
  a.data(0, 'hi');
  await sent(b, 1);
  assert.deepEqual(b.take(), [{ data: { id: 0, note: 0, bytes: bytes('hi') } }]);
  await settle(); // B's acknowledgement reaches A

  // B goes away; what A sends stays with A (and in A's saved state).
  const savedB = b.shutdown();
  a.data(0, 'there', 7);
  a.data(0);
  await settle();
  const savedA = a.shutdown();
  assert.ok(savedA.length > savedB.length);

  // Both come back (B first); A's items reach B once, in order.
  const b2 = new Harness(svcB, savedB, ctx(B));
  await settle();
  assert.deepEqual(b2.take(), []);
  const a2 = new Harness(svcA, savedA, ctx(A));
  await sent(b2, 2);
  assert.deepEqual(a2.take(), []);
  assert.deepEqual(b2.take(), [
    { data: { id: 0, note: 7, bytes: bytes('there') } },
    { data: { id: 0, note: 0, bytes: new Uint8Array(0) } },
  ]);
  await settle(); // acknowledgements
  b2.flow([0, 0]);
  await sent(a2, 1);
  assert.deepEqual(a2.take(), [{ flow: [{ id: 0, value: 0 }] }]);
  await settle();
  // Everything was acknowledged: nothing left to send.
  const again = a2.shutdown();
  const b3 = new Harness(svcB, b2.shutdown(), ctx(B));
  new Harness(svcA, again, ctx(A));
  await settle(10);
  assert.deepEqual(b3.take(), []);
}

test('peer: credit, data, EOF; items wait with the sender while the peer is away (one thread)', async () => {
  const hub = new PeerHub();
  await conversation(hub, hub);
});

test('peer: across hubs of a broadcast channel (worker threads)', async () => {
  const name = `gate-peer-test-${crypto.randomUUID()}`;
  const h1 = new BroadcastPeerHub(name);
  const h2 = new BroadcastPeerHub(name);
  try {
    await conversation(h1, h2);
  } finally {
    h1.close();
    h2.close();
  }
});

test('peer: protocol violations are ABI violations', async () => {
  const svc = createPeerService(new PeerHub());
  const a = new Harness(svc, null, ctx(A));
  const b = new Harness(svc, null, ctx(B));
  join(a);
  join(b);
  connect(a, B);
  assert.throws(() => a.data(5, 'x'), AbiViolation); // unknown link
  assert.throws(() => a.data(0, 'x'), AbiViolation); // no credit
  assert.throws(() => a.flow([0, PEER_MAX_CREDIT + 1]), AbiViolation);
  a.flow([0, 0]);
  assert.throws(() => a.flow([0, 1]), AbiViolation); // after flow 0
  a.data(0);
  assert.throws(() => a.data(0), AbiViolation); // after EOF
  assert.throws(() => new Harness(svc, Uint8Array.of(2), ctx(A)), /state version/);
  await settle();
});

test('peer: a name already online cannot join twice', () => {
  const svc = createPeerService(new PeerHub());
  const a = new Harness(svc, null, ctx(A));
  join(a);
  const saved = a.shutdown();
  const first = new Harness(svc, saved, ctx(A));
  const second = new Harness(svc, saved, ctx(A));
  assert.equal(first.aborts.length, 0);
  assert.match(second.aborts[0].message, /already online/);
});
