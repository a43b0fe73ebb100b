// The embedded inventory of a single server: the data directory's Store
// (node:sqlite and module files) behind the asynchronous Inventory
// interface. Every call does its work at once, before it returns its
// promise, so the order of writes is the order of calls, as it always was.
// One server owns every instance: ownership always holds.

import type { Store } from './store.ts';
import type { InstanceRecord, Inventory, OwnedInstanceRecord } from './inventory.ts';

export class SqliteInventory implements Inventory {
  readonly shared = false;
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  async hasModule(hash: string): Promise<boolean> {
    return this.store.hasModule(hash);
  }

  async moduleSize(hash: string): Promise<number | undefined> {
    return this.store.moduleSize(hash);
  }

  async readModule(hash: string): Promise<Uint8Array> {
    return this.store.readModule(hash);
  }

  async putModule(hash: string, bytes: Uint8Array): Promise<void> {
    await this.store.putModule(hash, bytes);
  }

  async adoptModule(hash: string, size: number): Promise<void> {
    this.store.adoptModule(hash, size);
  }

  async collectModule(hash: string): Promise<boolean> {
    return this.store.collectModule(hash);
  }

  async collectUnreferenced(olderThan: number): Promise<number> {
    return this.store.collectUnreferenced(olderThan);
  }

  async forgetSources(hash: string): Promise<void> {
    this.store.forgetSources(hash);
  }

  async recordSource(uri: string, hash: string): Promise<void> {
    this.store.recordSource(uri, hash);
  }

  async knowsPrincipal(principal: string): Promise<boolean> {
    return this.store.knowsPrincipal(principal);
  }

  async pinTags(principal: string, hash: string): Promise<string[] | undefined> {
    return this.store.pinTags(principal, hash);
  }

  async pinCount(principal: string): Promise<number> {
    return this.store.pinCount(principal);
  }

  async pin(principal: string, hash: string, tags: string[]): Promise<boolean | 'missing'> {
    return this.store.pin(principal, hash, tags);
  }

  async unpin(principal: string, hash: string): Promise<boolean> {
    return this.store.unpin(principal, hash);
  }

  async pins(principal: string): Promise<{ module: string; tags: string[] }[]> {
    return this.store.pins(principal);
  }

  async putInstance(r: InstanceRecord): Promise<boolean> {
    this.store.putInstance(r);
    return true;
  }

  async deleteInstance(principal: string, id: string): Promise<boolean> {
    this.store.deleteInstance(principal, id);
    return true;
  }

  async ownedInstances(): Promise<OwnedInstanceRecord[]> {
    return this.store.instances().map(owned);
  }

  async instance(principal: string, id: string): Promise<OwnedInstanceRecord | undefined> {
    const [record] = this.store.instances(principal, id);
    return record && owned(record);
  }

  async principalInstances(principal: string): Promise<OwnedInstanceRecord[]> {
    return this.store.instances(principal).map(owned);
  }

  async close(): Promise<void> {
    // The Store is closed by its owner, after the nonces it also keeps.
  }
}

function owned(r: InstanceRecord): OwnedInstanceRecord {
  return { ...r, owner: null, checkpointed: null, note: '' };
}
