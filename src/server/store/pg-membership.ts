// A server's membership of a cluster, in PostgreSQL: a lease (a row of
// gate.server with an expiry) renewed by heartbeats, the takeover of the
// instances of servers whose lease has expired, and messages between
// servers as notifications on one channel per server (LISTEN/NOTIFY).
//
// A lease that could not be renewed in time is lost for good: another server
// may have taken the instances over, so the server drops its own (fencing)
// and joins again as a newcomer. Record writes are conditional on ownership,
// so a server that has not noticed yet cannot overwrite the new owner's.

import pg from 'pg';
import { ensureSchema } from './pg-schema.ts';
import { PgInventory } from './pg-inventory.ts';
import type { OwnedInstanceRecord } from './inventory.ts';

export interface MembershipEvents {
  /** Instances of a server that died, now owned by this one: run them. */
  adopt(records: OwnedInstanceRecord[], from: string): void;
  /** This server's lease was lost (it did not renew it in time): its instances may run elsewhere now. */
  leaseLost(): void;
  /** A message from another server. */
  message(body: Record<string, unknown>): void;
  /** Something went wrong that the operator should see. */
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface MembershipOptions {
  url: string;
  /** This server's id (its uuid). */
  id: string;
  /** Seconds a lease lasts without a heartbeat (heartbeats come three times as often). */
  lease: number;
}

type State = { kind: 'joined' } | { kind: 'closing' } | { kind: 'closed' };

/** The channel a server listens on: an identifier of the server id's letters and digits, lower case (as LISTEN folds it). */
export function channelOf(id: string): string {
  return `gate_${id.replace(/[^A-Za-z0-9]/g, '').slice(0, 50).toLowerCase()}`;
}

export class Membership {
  readonly id: string;
  readonly inventory: PgInventory;
  readonly leaseSeconds: number;
  private readonly pool: pg.Pool;
  private readonly url: string;
  private events: MembershipEvents | undefined;
  private listener: pg.Client | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private beating: Promise<void> = Promise.resolve();
  private state: State = { kind: 'joined' };

  private constructor(options: MembershipOptions, pool: pg.Pool) {
    this.id = options.id;
    this.url = options.url;
    this.leaseSeconds = options.lease;
    this.pool = pool;
    this.inventory = new PgInventory(pool);
  }

  /** Connect, create the schema if needed, and take this server's lease. */
  static async join(options: MembershipOptions): Promise<Membership> {
    const pool = new pg.Pool({ connectionString: options.url, max: 10 });
    // An idle connection that breaks is replaced; the error must not end the process.
    pool.on('error', () => {});
    try {
      await ensureSchema(pool);
      const m = new Membership(options, pool);
      await m.renew(true);
      return m;
    } catch (error) {
      await pool.end().catch(() => {});
      throw new Error(`database ${redact(options.url)}: ${(error as Error).message}`);
    }
  }

  /** Start listening and beating: events come from now on. */
  async start(events: MembershipEvents): Promise<void> {
    this.events = events;
    await this.listen();
    const every = Math.max(100, (this.leaseSeconds * 1000) / 3);
    this.timer = setInterval(() => {
      this.beating = this.beating.then(() => this.beat());
    }, every);
    this.timer.unref();
    // Servers that died while none was up have instances waiting.
    await this.sweepNow();
  }

  private async listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url });
    c.on('error', (error) => {
      if (this.state.kind !== 'joined') return;
      this.events?.warn('cluster notification connection lost; reconnecting', { error: error.message });
      this.listener = undefined;
      setTimeout(() => void this.listen().catch(() => {}), 500).unref();
    });
    c.on('notification', (n) => {
      if (!n.payload) return;
      try {
        this.events?.message(JSON.parse(n.payload) as Record<string, unknown>);
      } catch (error) {
        this.events?.warn('cluster message not understood', { error: (error as Error).message });
      }
    });
    await c.connect();
    await c.query(`LISTEN ${channelOf(this.id)}`);
    this.listener = c;
  }

  /** Send a message to another server (delivered only if it listens now). */
  async send(to: string, body: Record<string, unknown>): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [channelOf(to), JSON.stringify(body)]);
  }

  /** Whether a server holds a lease now. */
  async alive(id: string): Promise<boolean> {
    const { rows } = await this.pool.query('SELECT 1 FROM gate.server WHERE id = $1 AND expires >= now()', [id]);
    return rows.length > 0;
  }

  private async renew(first: boolean): Promise<boolean> {
    const seconds = this.leaseSeconds;
    if (first) {
      await this.pool.query(
        `INSERT INTO gate.server (id, expires) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (id) DO UPDATE SET expires = excluded.expires, started = now()`,
        [this.id, seconds],
      );
      return true;
    }
    const r = await this.pool.query('UPDATE gate.server SET expires = now() + make_interval(secs => $2) WHERE id = $1 AND expires >= now()', [
      this.id,
      seconds,
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  private async beat(): Promise<void> {
    if (this.state.kind !== 'joined') return;
    try {
      if (!(await this.renew(false))) {
        this.events?.warn('cluster lease lost: this server did not renew it in time; its instances are dropped here', { server: this.id });
        this.events?.leaseLost();
        await this.renew(true);
        // What nobody took over meanwhile is still this server's: it runs again here, from its checkpoint.
        const mine = await this.inventory.ownedInstances(this.id);
        if (mine.length > 0) this.events?.adopt(mine, this.id);
      }
      await this.sweep();
    } catch (error) {
      this.events?.warn('cluster heartbeat failed', { error: (error as Error).message });
    }
  }

  /** Take over the instances of servers without a lease now (after the heartbeat under way). */
  sweepNow(): Promise<void> {
    const swept = this.beating.then(() => this.sweep());
    this.beating = swept.catch(() => {});
    return swept;
  }

  /** Take over the instances of servers without a lease. */
  private async sweep(): Promise<void> {
    const { rows } = await this.pool.query<{ owner: string; expires: Date | null }>(
      `SELECT DISTINCT i.owner, s.expires FROM gate.instance i LEFT JOIN gate.server s ON s.id = i.owner
       WHERE i.owner IS NOT NULL AND i.owner <> $1 AND (s.expires IS NULL OR s.expires < now())`,
      [this.id],
    );
    for (const { owner, expires } of rows) {
      const since = expires ? expires.getTime() - this.leaseSeconds * 1000 : undefined;
      const taken = await this.inventory.takeOver(owner, this.id, (r) => lossNote(r, owner, since));
      if (taken.length > 0) this.events?.adopt(taken, owner);
    }
  }

  /** Leave: stop beating and listening; the lease ends now, so that others take over what is left at once. */
  async close(release = true): Promise<void> {
    if (this.state.kind !== 'joined') return;
    this.state = { kind: 'closing' };
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    await this.listener?.end().catch(() => {});
    if (release) await this.pool.query('UPDATE gate.server SET expires = now() WHERE id = $1', [this.id]).catch(() => {});
    await this.pool.end();
    this.state = { kind: 'closed' };
  }
}

/** What a takeover lost: the work since the last checkpoint, when the instance was running. */
function lossNote(r: OwnedInstanceRecord, from: string, lastSeen: number | undefined): string {
  const seen = lastSeen !== undefined ? ` (last heard from ${new Date(lastSeen).toISOString()})` : '';
  const running = r.status.state === 'RUNNING' || r.resume;
  if (!running) return `taken over from server ${from}${seen}; it was not running: nothing lost`;
  if (r.checkpoint === null) return `taken over from server ${from}${seen}; no checkpoint: started again from its module, all its work lost`;
  const at = r.checkpointed !== null ? new Date(r.checkpointed).toISOString() : 'an unknown time';
  return `taken over from server ${from}${seen}; resumed from its checkpoint of ${at}: work after it lost`;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'URL';
  }
}
