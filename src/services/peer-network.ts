// How peer service instances reach each other (peer.ts). A network knows
// which peers are online and carries envelopes between them; it holds no
// data of its own, so nothing is lost when it drops an envelope: senders
// keep every item until the receiver acknowledges it, and send again when
// the receiver comes back online.
//
// PeerHub connects the instances of one thread. BroadcastPeerHub connects
// the instances of all threads of a process (the server's worker threads)
// over a web BroadcastChannel; each thread makes one.

/** What a peer is, as others see it. */
export interface PeerInfo {
  /** Peer name: a lower-case UUID. */
  readonly peerName: string;
  readonly principal: string | undefined;
  readonly isPublic: boolean;
}

/** Something a link carries, in order, reliably. */
export type PeerItem = { connect: true } | { flow: number } | { data: Uint8Array; note: number };

/**
 * One message between link ends. An item with its sequence number, or
 * (ack) the acknowledgement of every item up to seq.
 */
export interface Envelope {
  readonly from: string;
  /** The sender's id of the link. */
  readonly fromId: number;
  /** The receiver's id of the link; −1 while the sender does not know it. */
  readonly toId: number;
  readonly seq: number;
  readonly item?: PeerItem;
  readonly ack?: true;
}

export interface PeerEndpoint extends PeerInfo {
  /** An envelope for this endpoint. */
  receive(envelope: Envelope): void;
  /** The named peer came online (again): send it what it has not acknowledged. */
  online(peerName: string): void;
}

export interface PeerNetwork {
  /** False when the name is online here already (another endpoint). */
  join(e: PeerEndpoint): boolean;
  leave(e: PeerEndpoint): void;
  /** An online peer. */
  info(peerName: string): PeerInfo | undefined;
  /** Every online peer. */
  peers(): PeerInfo[];
  /** Deliver later (never synchronously); dropped when the peer is not online. */
  post(to: string, envelope: Envelope): void;
}

/** Whether a may see and connect to b: same principal, or both public. */
export function peerVisible(a: PeerInfo, b: PeerInfo): boolean {
  if (a.peerName === b.peerName) return false;
  if (a.principal !== undefined && a.principal !== '' && a.principal === b.principal) return true;
  return a.isPublic && b.isPublic;
}

function infoOf(e: PeerInfo): PeerInfo {
  return { peerName: e.peerName, principal: e.principal, isPublic: e.isPublic };
}

/** The peers of one thread. */
export class PeerHub implements PeerNetwork {
  protected readonly local = new Map<string, PeerEndpoint>();

  join(e: PeerEndpoint): boolean {
    const other = this.local.get(e.peerName);
    if (other !== undefined && other !== e) return false;
    this.local.set(e.peerName, e);
    this.announced(e);
    for (const o of [...this.local.values()]) if (o !== e) o.online(e.peerName);
    return true;
  }

  leave(e: PeerEndpoint): void {
    if (this.local.get(e.peerName) !== e) return;
    this.local.delete(e.peerName);
    this.left(e.peerName);
  }

  info(peerName: string): PeerInfo | undefined {
    const e = this.local.get(peerName);
    return e === undefined ? undefined : infoOf(e);
  }

  peers(): PeerInfo[] {
    return [...this.local.values()].map(infoOf);
  }

  post(to: string, envelope: Envelope): void {
    // Never synchronously: the sender may be in the middle of its own bookkeeping.
    queueMicrotask(() => this.local.get(to)?.receive(envelope));
  }

  /** Hooks for subclasses that tell other threads. */
  protected announced(_e: PeerEndpoint): void {}
  protected left(_peerName: string): void {}
}

type Message =
  | typeof PEER_HELLO
  | { t: 'join'; hub: string; info: PeerInfo }
  | { t: 'leave'; hub: string; peerName: string }
  | { t: 'envelope'; to: string; envelope: Envelope };

/** On a hub channel: every hub announces its peers again (a newcomer asks; so does a bridge to other servers). */
export const PEER_HELLO = { t: 'hello' } as const;

/**
 * The peers of every thread that makes a BroadcastPeerHub with the same
 * channel name. Each knows its own thread's endpoints and a directory of the
 * others', kept by join/leave announcements (a new hub asks the others to
 * announce theirs). close() releases the channel.
 */
export class BroadcastPeerHub extends PeerHub {
  readonly #channel: BroadcastChannel;
  /** Remote peers and the hub each is on (announcements from different hubs may arrive out of order). */
  readonly #remote = new Map<string, { hub: string; info: PeerInfo }>();
  readonly #id = crypto.randomUUID();

  constructor(channelName = 'gate-peer') {
    super();
    this.#channel = new BroadcastChannel(channelName);
    this.#channel.onmessage = (ev: MessageEvent) => this.#message(ev.data as Message);
    // Node: do not keep the process (or worker thread) alive for the channel alone.
    (this.#channel as unknown as { unref?: () => void }).unref?.();
    this.#channel.postMessage(PEER_HELLO satisfies Message);
  }

  override info(peerName: string): PeerInfo | undefined {
    return super.info(peerName) ?? this.#remote.get(peerName)?.info;
  }

  override peers(): PeerInfo[] {
    const out = super.peers();
    for (const [name, r] of this.#remote) if (!this.local.has(name)) out.push(r.info);
    return out;
  }

  override post(to: string, envelope: Envelope): void {
    if (this.local.has(to)) super.post(to, envelope);
    else if (this.#remote.has(to)) this.#channel.postMessage({ t: 'envelope', to, envelope } satisfies Message);
  }

  protected override announced(e: PeerEndpoint): void {
    this.#channel.postMessage({ t: 'join', hub: this.#id, info: infoOf(e) } satisfies Message);
  }

  protected override left(peerName: string): void {
    this.#channel.postMessage({ t: 'leave', hub: this.#id, peerName } satisfies Message);
  }

  close(): void {
    this.#channel.close();
  }

  #message(m: Message): void {
    switch (m.t) {
      case 'hello':
        for (const e of this.local.values()) this.announced(e);
        return;
      case 'join':
        this.#remote.set(m.info.peerName, { hub: m.hub, info: m.info });
        for (const e of [...this.local.values()]) if (e.peerName !== m.info.peerName) e.online(m.info.peerName);
        return;
      case 'leave':
        if (this.#remote.get(m.peerName)?.hub === m.hub) this.#remote.delete(m.peerName);
        return;
      case 'envelope':
        this.local.get(m.to)?.receive(m.envelope);
        return;
    }
  }
}
