// Broadcasts between the servers of a cluster through PostgreSQL, for the
// peer service's hubs: what one server sends, every other server receives,
// in the order it was sent. One connection sends (so notifications commit
// in order) and one listens on the channel `gate_peers`; a message too
// large for a notification (PostgreSQL allows under 8000 bytes) is stored in
// gate.peer_message and the notification names its row. Receivers handle
// messages one after the other, so a stored one is not overtaken.
//
// The peer service needs nothing more: its links keep every item until the
// receiver acknowledges it and send again when the receiver is announced
// online again, so a message lost with a server is sent again.

import pg from 'pg';

const CHANNEL = 'gate_peers';
/** Notification payloads above this are stored in gate.peer_message. */
const MAX_NOTIFY = 7000;
/** Stored messages older than this are removed (every server has read them by then). */
const KEEP_SECONDS = 60;

type Wire = { from: string; data: unknown } | { from: string; row: string };

/** Uint8Arrays as { $bytes: base64 } in JSON. */
function encode(data: unknown): string {
  return JSON.stringify(data, (_key, value: unknown) =>
    value instanceof Uint8Array ? { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } : value,
  );
}

function decode(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && typeof (value as { $bytes?: unknown }).$bytes === 'string') {
      return new Uint8Array(Buffer.from((value as { $bytes: string }).$bytes, 'base64'));
    }
    return value;
  });
}

export class PgPeerRelay {
  private readonly from: string;
  private readonly sender: pg.Client;
  private readonly listener: pg.Client;
  private sending: Promise<void> = Promise.resolve();
  private receiving: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(from: string, sender: pg.Client, listener: pg.Client) {
    this.from = from;
    this.sender = sender;
    this.listener = listener;
  }

  /** Connect as server `from`; `receive` gets every other server's messages, in order. */
  static async open(url: string, from: string, receive: (data: unknown) => void, warn: (message: string) => void): Promise<PgPeerRelay> {
    const sender = new pg.Client({ connectionString: url });
    const listener = new pg.Client({ connectionString: url });
    await sender.connect();
    await listener.connect();
    const relay = new PgPeerRelay(from, sender, listener);
    for (const c of [sender, listener]) c.on('error', (error) => relay.closed || warn(`peer relay connection lost: ${error.message}`));
    listener.on('notification', (n) => {
      if (!n.payload || relay.closed) return;
      relay.receiving = relay.receiving
        .then(async () => {
          const wire = JSON.parse(n.payload!) as Wire;
          if (wire.from === from || relay.closed) return;
          if ('data' in wire) {
            receive(decode(JSON.stringify(wire.data)));
            return;
          }
          const { rows } = await sender.query<{ body: Buffer }>('SELECT body FROM gate.peer_message WHERE seq = $1', [wire.row]);
          if (rows[0] && !relay.closed) receive(decode(rows[0].body.toString()));
        })
        .catch((error: unknown) => warn(`peer message not relayed: ${(error as Error).message}`));
    });
    await listener.query(`LISTEN ${CHANNEL}`);
    return relay;
  }

  /** Send to every other server (after what was sent before). */
  send(data: unknown): void {
    if (this.closed) return;
    const body = encode(data);
    this.sending = this.sending
      .then(async () => {
        const inline = `{"from":${JSON.stringify(this.from)},"data":${body}}`;
        if (Buffer.byteLength(inline) <= MAX_NOTIFY) {
          await this.sender.query('SELECT pg_notify($1, $2)', [CHANNEL, inline]);
          return;
        }
        await this.sender.query('BEGIN');
        const { rows } = await this.sender.query<{ seq: string }>('INSERT INTO gate.peer_message (target, body) VALUES ($1, $2) RETURNING seq', ['*', Buffer.from(body)]);
        await this.sender.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ from: this.from, row: rows[0].seq } satisfies Wire)]);
        await this.sender.query('COMMIT');
        await this.sender.query(`DELETE FROM gate.peer_message WHERE created < now() - interval '${KEEP_SECONDS} seconds'`);
      })
      .catch(() => this.sender.query('ROLLBACK').then(() => {}, () => {}));
  }

  /** Stop receiving at once; what was sent goes out first. */
  async close(): Promise<void> {
    this.closed = true;
    await this.sending;
    await this.receiving;
    await this.sender.end().catch(() => {});
    await this.listener.end().catch(() => {});
  }
}
