// The peer service (not in Gate; Gate's open issue 23): programs on one
// server find each other and exchange bytes over *links*, bidirectional
// streams with Gate's flow control (services.md §3). Packet formats are in
// docs/services.md ("peer").
//
// Who can see whom: instances of the same principal always; instances of
// different principals (or without one) only when both joined as public.
//
// Nothing is lost when either side is suspended, snapshotted and restored,
// or when the network drops an envelope: every item a link end sends (the
// connection itself, flow, data) carries a sequence number and stays in the
// sender's *unacknowledged* list, which is part of its saved state, until
// the receiver acknowledges it. A receiver processes items strictly in
// sequence, acknowledges them and ignores repeats; a sender sends its
// unacknowledged items again whenever the peer comes (back) online. What a
// receiver processed went to its program's queue, which the runtime saves
// with the program. A link is bound to the peer's *peer name*, which is its
// instance id at its first join, kept across restores.

import { AbiViolation } from '../runtime/instance/errors.ts';
import {
  DATA_HEADER_SIZE,
  Domain,
  HEADER_SIZE,
  dataNote,
  dataPayload,
  dataStreamId,
  makeDataPacket,
  makeFlowPacket,
  makePacket,
  packetDomain,
  readFlows,
} from '../runtime/packet/packet.ts';
import type { AbortRun, SendPacket, ServiceConfig, ServiceContext, ServiceFactory, ServiceInstance } from '../runtime/service/service.ts';
import { PeerHub, peerVisible, type Envelope, type PeerEndpoint, type PeerItem, type PeerNetwork } from './peer-network.ts';
import { ByteReader, ByteWriter, SavedStateError } from './varint.ts';

export { BroadcastPeerHub, PeerHub, peerVisible, type PeerNetwork } from './peer-network.ts';

export const PEER_NAME = 'peer';
export const PEER_REVISION = '0';

export const PEER_CALL_JOIN = 0;
export const PEER_CALL_LIST = 1;
export const PEER_CALL_CONNECT = 2;

/** JOIN flag: visible to (and able to see) public instances of other principals. */
export const PEER_FLAG_PUBLIC = 1;

/** Info event: a peer connected a link to this instance. */
export const PEER_EVENT_CONNECTED = 1;

/** i16 error codes in call replies. */
export const PeerError = {
  OK: 0,
  NOT_JOINED: 1,
  NOT_FOUND: 2,
  SELF: 3,
  MALFORMED: 4,
  TOO_MANY_LINKS: 5,
} as const;

/** Credit a receiver may have granted and not yet used, per link: bounds what a sender keeps. */
export const PEER_MAX_CREDIT = 1 << 20;

/** Links per instance. */
export const PEER_MAX_LINKS = 1024;

const STATE_VERSION = 1;

interface Link {
  readonly id: number;
  /** Peer name of the other side. */
  readonly peer: string;
  /** The link's id on the other side; −1 until the peer has answered. */
  peerId: number;
  /** Bytes the peer let our program send, unused. */
  sendCredit: number;
  /** Bytes our program let the peer send, not yet received. */
  recvCredit: number;
  /** Our program sent data EOF. */
  sentEof: boolean;
  /** Our program sent flow 0. */
  recvClosed: boolean;
  /** Sequence number of the next item we send (the first is 1). */
  nextSeq: number;
  /** Sequence number of the last item we processed from the peer. */
  recvSeq: number;
  /** Items sent but not acknowledged, oldest first (sequence numbers nextSeq − length …). */
  readonly unacked: PeerItem[];
  /** How many of unacked have been posted since the peer was last seen coming online. */
  posted: number;
}

/** 16 raw bytes of a UUID string (zeros if malformed). */
export function uuidToBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  const out = new Uint8Array(16);
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return out;
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToUuid(b: Uint8Array): string {
  const h = [...b.subarray(0, 16)].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The peer service; instances on the same network can see each other. */
export function createPeerService(network: PeerNetwork = new PeerHub()): ServiceFactory {
  return {
    name: PEER_NAME,
    revision: PEER_REVISION,
    streams: true,
    create(context, config, saved) {
      return new PeerInstance(network, context, config, saved);
    },
  };
}

function newLink(id: number, peer: string, peerId: number): Link {
  return {
    id,
    peer,
    peerId,
    sendCredit: 0,
    recvCredit: 0,
    sentEof: false,
    recvClosed: false,
    nextSeq: 1,
    recvSeq: 0,
    unacked: [],
    posted: 0,
  };
}

class PeerInstance implements ServiceInstance, PeerEndpoint {
  readonly #net: PeerNetwork;
  readonly #code: number;
  readonly #maxSendSize: number;
  readonly principal: string | undefined;
  peerName: string;
  isPublic = false;
  #joined = false;
  #nextId = 0;
  readonly #links = new Map<number, Link>();
  /** Links by `${peer}/${peerId}`, for envelopes that do not name our id. */
  readonly #byPeer = new Map<string, Link>();
  #send: SendPacket | null = null;
  #abort: AbortRun | null = null;
  #stopped = false;

  constructor(net: PeerNetwork, context: ServiceContext, config: ServiceConfig, saved: Uint8Array | null) {
    this.#net = net;
    this.#code = config.code;
    this.#maxSendSize = config.maxSendSize;
    this.principal = context.principal;
    this.peerName = context.instance.toLowerCase();
    if (saved !== null && saved.length > 0) this.#restore(saved);
  }

  start(send: SendPacket, abort: AbortRun): void {
    this.#send = send;
    this.#abort = abort;
    if (this.#joined) this.#join();
  }

  #join(): boolean {
    if (!this.#net.join(this)) {
      this.#abort?.(new Error(`peer name ${this.peerName} is already online`));
      return false;
    }
    for (const link of this.#links.values()) this.#post(link);
    return true;
  }

  handle(packet: Uint8Array): Uint8Array | void {
    switch (packetDomain(packet)) {
      case Domain.CALL:
        return this.#call(packet.subarray(HEADER_SIZE));
      case Domain.FLOW:
        for (const { id, value } of readFlows(packet)) this.#flowFromProgram(id, value);
        return;
      case Domain.DATA:
        this.#dataFromProgram(packet);
        return;
      default:
        return; // info: ignored
    }
  }

  #reply(content: Uint8Array): Uint8Array {
    const p = makePacket(HEADER_SIZE + content.length, this.#code, Domain.CALL);
    p.set(content, HEADER_SIZE);
    return p;
  }

  #status(error: number, id = -1): Uint8Array {
    const c = new Uint8Array(8);
    const v = new DataView(c.buffer);
    v.setInt16(0, error, true);
    v.setInt32(4, id, true);
    return this.#reply(c);
  }

  #call(c: Uint8Array): Uint8Array {
    if (c.length === 0) return this.#reply(new Uint8Array(0));
    switch (c[0]) {
      case PEER_CALL_JOIN: {
        if (c.length < 2) return this.#reply(Uint8Array.of(PeerError.MALFORMED, 0));
        const wasPublic = this.isPublic;
        this.isPublic = (c[1] & PEER_FLAG_PUBLIC) !== 0;
        if (!this.#joined) {
          this.#joined = true;
          this.#join();
        } else if (wasPublic !== this.isPublic) {
          // Announce the new flag.
          this.#net.leave(this);
          this.#join();
        }
        return this.#reply(Uint8Array.of(PeerError.OK, 0));
      }
      case PEER_CALL_LIST: {
        if (!this.#joined) return this.#reply(Uint8Array.of(PeerError.NOT_JOINED, 0, 0, 0));
        const room = Math.floor((this.#maxSendSize - HEADER_SIZE - 4) / 16);
        const names = this.#net
          .peers()
          .filter((p) => peerVisible(this, p))
          .map((p) => p.peerName)
          .sort()
          .slice(0, room);
        const out = new Uint8Array(4 + 16 * names.length);
        new DataView(out.buffer).setUint16(2, names.length, true);
        names.forEach((n, i) => out.set(uuidToBytes(n), 4 + 16 * i));
        return this.#reply(out);
      }
      case PEER_CALL_CONNECT: {
        if (c.length < 17) return this.#status(PeerError.MALFORMED);
        if (!this.#joined) return this.#status(PeerError.NOT_JOINED);
        const name = bytesToUuid(c.subarray(1, 17));
        if (name === this.peerName) return this.#status(PeerError.SELF);
        const target = this.#net.info(name);
        if (target === undefined || !peerVisible(this, target)) return this.#status(PeerError.NOT_FOUND);
        if (this.#links.size >= PEER_MAX_LINKS) return this.#status(PeerError.TOO_MANY_LINKS);
        const link = newLink(this.#newId(), name, -1);
        this.#links.set(link.id, link);
        this.#forward(link, { connect: true });
        return this.#status(PeerError.OK, link.id);
      }
      default:
        return this.#reply(new Uint8Array(0));
    }
  }

  #newId(): number {
    while (this.#links.has(this.#nextId)) this.#nextId = (this.#nextId + 1) & 0x7fffffff;
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) & 0x7fffffff;
    return id;
  }

  #link(id: number): Link {
    const link = this.#links.get(id);
    if (link === undefined) throw new AbiViolation(`peer: unknown link id ${id}`);
    return link;
  }

  #flowFromProgram(id: number, value: number): void {
    const link = this.#link(id);
    if (value > 0) {
      if (link.recvClosed) throw new AbiViolation(`peer: flow after flow 0 on link ${id}`);
      if (link.recvCredit + value > PEER_MAX_CREDIT) {
        throw new AbiViolation(`peer: credit on link ${id} exceeds the limit of ${PEER_MAX_CREDIT} bytes`);
      }
      link.recvCredit += value;
    } else if (value === 0) {
      if (link.recvClosed) throw new AbiViolation(`peer: link ${id} already closed for receiving`);
      link.recvClosed = true;
    }
    this.#forward(link, { flow: value });
  }

  #dataFromProgram(packet: Uint8Array): void {
    const link = this.#link(dataStreamId(packet));
    const bytes = dataPayload(packet);
    if (link.sentEof) throw new AbiViolation(`peer: data after end of data on link ${link.id}`);
    if (bytes.length === 0) {
      link.sentEof = true;
    } else {
      if (bytes.length > link.sendCredit) {
        throw new AbiViolation(`peer: ${bytes.length} bytes on link ${link.id} exceed the granted ${link.sendCredit}`);
      }
      link.sendCredit -= bytes.length;
    }
    this.#forward(link, { data: bytes.slice(), note: dataNote(packet) });
  }

  #forward(link: Link, item: PeerItem): void {
    link.unacked.push(item);
    link.nextSeq++;
    this.#post(link);
  }

  // Post what has not been posted since the peer was last seen coming online.
  #post(link: Link): void {
    if (!this.#joined || this.#stopped || this.#net.info(link.peer) === undefined) return;
    const first = link.nextSeq - link.unacked.length;
    for (let i = link.posted; i < link.unacked.length; i++) {
      this.#net.post(link.peer, {
        from: this.peerName,
        fromId: link.id,
        toId: link.peerId,
        seq: first + i,
        item: link.unacked[i],
      });
    }
    link.posted = link.unacked.length;
  }

  // PeerEndpoint, called by the network.

  online(peerName: string): void {
    for (const link of this.#links.values()) {
      if (link.peer !== peerName) continue;
      link.posted = 0; // what it had not acknowledged may be lost: send again
      this.#post(link);
    }
  }

  receive(env: Envelope): void {
    if (this.#stopped || this.#send === null) return; // the sender will send it again
    let link = env.toId >= 0 ? this.#links.get(env.toId) : this.#byPeer.get(`${env.from}/${env.fromId}`);
    if (link !== undefined && link.peer !== env.from) return;
    if (env.ack) {
      if (link === undefined) return;
      this.#learnPeerId(link, env.fromId);
      const first = link.nextSeq - link.unacked.length;
      const n = Math.min(env.seq - first + 1, link.unacked.length);
      if (n > 0) {
        link.unacked.splice(0, n);
        link.posted = Math.max(0, link.posted - n);
      }
      return;
    }
    if (link === undefined) {
      if (env.item === undefined || !('connect' in env.item) || env.seq !== 1) return;
      if (this.#links.size >= PEER_MAX_LINKS) return; // not acknowledged: tried again later
      link = newLink(this.#newId(), env.from, env.fromId);
      this.#links.set(link.id, link);
      this.#byPeer.set(`${env.from}/${env.fromId}`, link);
    }
    this.#learnPeerId(link, env.fromId);
    if (env.seq === link.recvSeq + 1 && env.item !== undefined) {
      link.recvSeq = env.seq;
      this.#process(link, env.item);
    }
    if (env.seq <= link.recvSeq) {
      this.#net.post(env.from, { from: this.peerName, fromId: link.id, toId: env.fromId, seq: link.recvSeq, ack: true });
    }
  }

  #learnPeerId(link: Link, peerId: number): void {
    if (link.peerId >= 0) return;
    link.peerId = peerId;
    this.#byPeer.set(`${link.peer}/${peerId}`, link);
  }

  // One item from the peer, in sequence: tell the program.
  #process(link: Link, item: PeerItem): void {
    const send = this.#send!;
    if ('connect' in item) {
      const info = makePacket(HEADER_SIZE + 24, this.#code, Domain.INFO);
      info[HEADER_SIZE] = PEER_EVENT_CONNECTED;
      new DataView(info.buffer).setInt32(HEADER_SIZE + 4, link.id, true);
      info.set(uuidToBytes(link.peer), HEADER_SIZE + 8);
      send(info);
    } else if ('flow' in item) {
      if (item.flow > 0) link.sendCredit = Math.min(link.sendCredit + item.flow, PEER_MAX_CREDIT);
      send(makeFlowPacket(this.#code, [{ id: link.id, value: item.flow }]));
    } else {
      link.recvCredit = Math.max(0, link.recvCredit - item.data.length);
      // A peer's data packet always fits: it had the same header and limit.
      if (DATA_HEADER_SIZE + item.data.length <= this.#maxSendSize) {
        send(makeDataPacket(this.#code, link.id, item.data, item.note));
      }
    }
  }

  shutdown(): Uint8Array {
    this.#stopped = true;
    this.#net.leave(this);
    return this.#save();
  }

  /** Joined (others can reach it) or linked: not idle. */
  hibernate(): { state: Uint8Array; idle: boolean } {
    return { state: this.#save(), idle: !this.#joined && this.#links.size === 0 };
  }

  #save(): Uint8Array {
    if (!this.#joined && this.#links.size === 0) return new Uint8Array(0);
    const w = new ByteWriter()
      .varint(STATE_VERSION)
      .bytes(uuidToBytes(this.peerName))
      .varint((this.#joined ? 1 : 0) | (this.isPublic ? 2 : 0))
      .varint(this.#nextId)
      .varint(this.#links.size);
    for (const l of this.#links.values()) {
      w.varint(l.id)
        .bytes(uuidToBytes(l.peer))
        .varint(l.peerId + 1)
        .varint(l.sendCredit)
        .varint(l.recvCredit)
        .varint((l.sentEof ? 1 : 0) | (l.recvClosed ? 2 : 0))
        .varint(l.nextSeq)
        .varint(l.recvSeq)
        .varint(l.unacked.length);
      for (const item of l.unacked) {
        const i32 = new Uint8Array(4);
        if ('connect' in item) {
          w.varint(2);
        } else if ('flow' in item) {
          new DataView(i32.buffer).setInt32(0, item.flow, true);
          w.varint(0).bytes(i32);
        } else {
          new DataView(i32.buffer).setInt32(0, item.note, true);
          w.varint(1).bytes(i32).varint(item.data.length).bytes(item.data);
        }
      }
    }
    return w.finish();
  }

  #restore(saved: Uint8Array): void {
    const r = new ByteReader(saved);
    if (r.varint() !== STATE_VERSION) throw new SavedStateError('peer: unknown state version');
    this.peerName = bytesToUuid(r.bytes(16));
    const flags = r.varint();
    this.#joined = (flags & 1) !== 0;
    this.isPublic = (flags & 2) !== 0;
    this.#nextId = r.varint();
    const count = r.varint();
    if (count > PEER_MAX_LINKS) throw new SavedStateError('peer: too many links in saved state');
    for (let i = 0; i < count; i++) {
      const id = r.varint();
      const link = newLink(id, bytesToUuid(r.bytes(16)), r.varint() - 1);
      link.sendCredit = r.varint();
      link.recvCredit = r.varint();
      const lf = r.varint();
      link.sentEof = (lf & 1) !== 0;
      link.recvClosed = (lf & 2) !== 0;
      link.nextSeq = r.varint();
      link.recvSeq = r.varint();
      const items = r.varint();
      if (items >= link.nextSeq) throw new SavedStateError('peer: more unacknowledged items than sent');
      for (let j = 0; j < items; j++) {
        const kind = r.varint();
        if (kind === 2) {
          link.unacked.push({ connect: true });
          continue;
        }
        const v = new DataView(r.bytes(4).buffer).getInt32(0, true);
        if (kind === 0) link.unacked.push({ flow: v });
        else if (kind === 1) {
          const n = r.varint();
          if (DATA_HEADER_SIZE + n > this.#maxSendSize) throw new SavedStateError('peer: saved data item too large');
          link.unacked.push({ data: r.bytes(n), note: v });
        } else throw new SavedStateError('peer: unknown saved item kind');
      }
      if (this.#links.has(id)) throw new SavedStateError('peer: duplicate link id in saved state');
      this.#links.set(id, link);
      if (link.peerId >= 0) this.#byPeer.set(`${link.peer}/${link.peerId}`, link);
    }
    if (r.remaining !== 0) throw new SavedStateError('peer: trailing data in saved state');
  }
}
