// Several servers, one system: with `database.url` the servers share their
// inventory in PostgreSQL, and an instance runs on exactly one of them, its
// owner. A request for an instance another server runs moves the instance
// here (the owner suspends it, writes its checkpoint and record, and names
// this server the owner; this server restores and resumes it) and is then
// served as any local one. A dead server's instances are taken over from
// their last checkpoint by the first live server that notices its lease has
// expired. Messages between servers are PostgreSQL notifications.

import { randomUUID } from 'node:crypto';
import { HttpError } from './errors.ts';
import type { Instances, RemoteInstances } from './instances.ts';
import type { Logger } from '../obs/log.ts';
import type { OwnedInstanceRecord } from '../store/inventory.ts';
import type { Membership } from '../store/pg-membership.ts';

/** Seconds a server waits for another to hand an instance over (it suspends it and writes its checkpoint). */
const HANDOVER_SECONDS = 30;

type Message =
  | { op: 'handover'; principal: string; id: string; to: string; ticket: string }
  | { op: 'handed'; ticket: string; ok: boolean };

export class Cluster implements RemoteInstances {
  private readonly membership: Membership;
  private readonly instances: Instances;
  private readonly log: Logger;
  private readonly waiting = new Map<string, (ok: boolean) => void>();
  private readonly acquiring = new Map<string, Promise<void>>();

  constructor(membership: Membership, instances: Instances, log: Logger) {
    this.membership = membership;
    this.instances = instances;
    this.log = log;
    instances.remote = this;
  }

  get id(): string {
    return this.membership.id;
  }

  /** Start serving the cluster: take over what dead servers left, answer other servers. */
  start(): Promise<void> {
    return this.membership.start({
      adopt: (records, from) => {
        const what = from === this.id ? 'instances run again after this server joined the cluster again' : 'instances taken over from a server whose lease expired';
        this.log.warn(what, { server: from, instances: records.length });
        this.instances.adopt(records).catch((error: unknown) => this.log.error('takeover failed', { error: String(error) }));
      },
      leaseLost: () => this.instances.dropOwned(),
      message: (body) => this.receive(body as Message),
      warn: (message, fields) => this.log.warn(message, fields),
    });
  }

  acquire(record: OwnedInstanceRecord): Promise<void> {
    const key = `${record.principal}\n${record.id}`;
    let p = this.acquiring.get(key);
    if (!p) {
      p = this.move(record).finally(() => this.acquiring.delete(key));
      this.acquiring.set(key, p);
    }
    return p;
  }

  private async move(record: OwnedInstanceRecord): Promise<void> {
    const inventory = this.membership.inventory;
    const owner = record.owner;
    if (owner !== null && owner !== this.id && (await this.membership.alive(owner))) {
      const started = performance.now();
      const answer = await this.ask(owner, record);
      if (answer === 'refused') {
        throw new HttpError(503, `instance is on server ${owner}, which did not hand it over; try again`, { 'Retry-After': '1' });
      }
      if (answer === 'handed') {
        this.log.info('instance moved here', { principal: record.principal, instance: record.id, from: owner, ms: Math.round(performance.now() - started) });
      }
    }
    // Its server is gone (or went while asked): take its instances over now rather than at the next heartbeat.
    if (owner !== null && owner !== this.id) await this.membership.sweepNow();
    const now = await inventory.instance(record.principal, record.id);
    if (now?.owner === this.id) await this.instances.adopt([now]);
  }

  /**
   * Ask the owner to hand the instance over: whether it did, or refused (or
   * did not answer in time), or its lease expired while we waited (it died).
   */
  private async ask(owner: string, record: OwnedInstanceRecord): Promise<'handed' | 'refused' | 'dead'> {
    const ticket = randomUUID();
    let settle!: (answer: 'handed' | 'refused' | 'dead') => void;
    const answered = new Promise<'handed' | 'refused' | 'dead'>((resolve) => (settle = resolve));
    this.waiting.set(ticket, (ok) => settle(ok ? 'handed' : 'refused'));
    const timeout = setTimeout(() => settle('refused'), HANDOVER_SECONDS * 1000);
    // A server killed just now does not answer: its lease runs out instead.
    const watch = setInterval(() => {
      this.membership.alive(owner).then(
        (alive) => alive || settle('dead'),
        () => {},
      );
    }, (this.membership.leaseSeconds * 1000) / 3);
    try {
      await this.membership.send(owner, { op: 'handover', principal: record.principal, id: record.id, to: this.id, ticket });
      return await answered;
    } finally {
      clearTimeout(timeout);
      clearInterval(watch);
      this.waiting.delete(ticket);
    }
  }

  private receive(m: Message): void {
    if (m.op === 'handed') {
      this.waiting.get(m.ticket)?.(m.ok);
      return;
    }
    if (m.op !== 'handover') return;
    const inventory = this.membership.inventory;
    this.instances
      .handOver(m.principal, m.id, m.to, () => inventory.transferInstance(m.principal, m.id, this.id, m.to))
      .catch((error: unknown) => {
        this.log.error('handover failed', { principal: m.principal, instance: m.id, to: m.to, error: String(error) });
        return false;
      })
      .then((ok) => this.membership.send(m.to, { op: 'handed', ticket: m.ticket, ok }))
      .catch((error: unknown) => this.log.error('handover answer not sent', { error: String(error) }));
  }

  close(): Promise<void> {
    return this.membership.close();
  }
}
