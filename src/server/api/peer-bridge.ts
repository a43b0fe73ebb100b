// The peer service across the servers of a cluster: its hubs meet on a
// BroadcastChannel (service.peer.channel) within a server, across its
// threads and worker processes; the bridge joins that channel and carries
// what is said on it to the other servers through PostgreSQL, and what they
// say to it. The hubs' protocol (announcements, envelopes with sequence
// numbers and acknowledgements) is carried unchanged, so ordering and
// suspend/restore work as within one server.

import { PEER_HELLO } from '../../services/peer-network.ts';
import type { PgPeerRelay } from '../store/pg-peer-relay.ts';

export class PeerBridge {
  private readonly channel: BroadcastChannel;
  private readonly relay: PgPeerRelay;

  private constructor(channel: BroadcastChannel, relay: PgPeerRelay) {
    this.channel = channel;
    this.relay = relay;
  }

  static async open(channelName: string, url: string, server: string, warn: (message: string) => void): Promise<PeerBridge> {
    const channel = new BroadcastChannel(channelName);
    // Node: the channel alone does not keep the process alive.
    (channel as unknown as { unref?: () => void }).unref?.();
    const { PgPeerRelay } = await import('../store/pg-peer-relay.ts');
    const relay = await PgPeerRelay.open(url, server, (data) => channel.postMessage(data), warn);
    channel.onmessage = (ev: MessageEvent) => relay.send(ev.data);
    // Hubs that started before the bridge announce their peers again, here and (relayed) on the other servers;
    // the other servers' hubs announce theirs.
    channel.postMessage(PEER_HELLO);
    relay.send(PEER_HELLO);
    return new PeerBridge(channel, relay);
  }

  async close(): Promise<void> {
    await this.relay.close();
    this.channel.close();
  }
}
