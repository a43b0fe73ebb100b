// What the server keeps durably, as one asynchronous interface with two
// implementations: the embedded one (node:sqlite and module files in the
// data directory, SqliteInventory) for a single server, and PostgreSQL
// (PgInventory) for several servers sharing one system. The semantics are
// the same: module bytes are content-addressed and stored before any record
// refers to them; pins and instance records belong to a principal.
//
// Each instance record names its owner, the server that runs it. Writes of
// an instance's record are conditional on ownership, so a server that lost
// an instance (another took it over) can no longer change its record.

import type { Status } from '../../runtime/instance/status.ts';

export interface InstanceRecord {
  principal: string;
  id: string;
  module: string;
  function: string;
  status: Status;
  tags: string[];
  /** Module hash of the latest snapshot of this instance, if any. */
  checkpoint: string | null;
  /** The instance was running when it was last checkpointed: run it again when it is loaded. */
  resume: boolean;
  created: number;
  /**
   * Set when the checkpoint is a hibernation snapshot: the run waits in it
   * (RUNNING) and goes on from it when something needs it. `wakeAt`: when
   * its timer ends the wait; `idle`: none of its services had anything
   * under way (otherwise it is restored at startup, so that they resume).
   * Kept by the embedded inventory only.
   */
  hibernation?: { wakeAt: number | null; idle: boolean } | null;
}

/** An instance record as the shared inventory has it: who runs it, and since when its checkpoint dates. */
export interface OwnedInstanceRecord extends InstanceRecord {
  /** Server id of the owner; null while nobody runs it (handed over, or never loaded). */
  owner: string | null;
  /** When the checkpoint was written (ms since the epoch), or null. */
  checkpointed: number | null;
  /** What the last takeover lost, said in the instance's info; empty when nothing. */
  note: string;
}

export interface Inventory {
  /** Whether several servers share this inventory (instances may live elsewhere). */
  readonly shared: boolean;
  hasModule(hash: string): Promise<boolean>;
  moduleSize(hash: string): Promise<number | undefined>;
  /** Module bytes, checked against their hash (damaged bytes are a ModuleCorruptError, never run). */
  readModule(hash: string): Promise<Uint8Array>;
  /** Store module bytes durably and record them; a no-op when stored intact already. */
  putModule(hash: string, bytes: Uint8Array): Promise<void>;
  /**
   * Record a module file a worker process wrote into the data directory
   * with putModule's care (a hibernation snapshot). The embedded inventory
   * only: servers of a cluster do not hibernate.
   */
  adoptModule(hash: string, size: number): Promise<void>;
  /** Remove a module nobody refers to (no pin, instance, checkpoint or source); whether it went. */
  collectModule(hash: string): Promise<boolean>;
  /** Remove every module nobody refers to, older than `olderThan` ms since the epoch; how many. */
  collectUnreferenced(olderThan: number): Promise<number>;
  /** Forget which source URIs named a module, so that it can be collected. */
  forgetSources(hash: string): Promise<void>;
  recordSource(uri: string, hash: string): Promise<void>;

  /** Whether a principal has anything here (a pin or an instance). */
  knowsPrincipal(principal: string): Promise<boolean>;

  pinTags(principal: string, hash: string): Promise<string[] | undefined>;
  pinCount(principal: string): Promise<number>;
  /** Pin (or re-tag): whether something changed, or `missing` when the module is not stored (another process collected it). */
  pin(principal: string, hash: string, tags: string[]): Promise<boolean | 'missing'>;
  unpin(principal: string, hash: string): Promise<boolean>;
  pins(principal: string): Promise<{ module: string; tags: string[] }[]>;

  /**
   * Write the record of an instance `owner` runs (insert, or update when
   * `owner` still owns it or nobody does); false when another server owns it
   * now. `checkpointed` is when its checkpoint was written.
   */
  putInstance(r: InstanceRecord, owner: string, checkpointed?: number): Promise<boolean>;
  /** Delete the record while `owner` owns it; false when another server does. */
  deleteInstance(principal: string, id: string, owner: string): Promise<boolean>;
  /** Records owned by `owner` (or by nobody: claimed for it). */
  ownedInstances(owner: string): Promise<OwnedInstanceRecord[]>;
  /** One record, whoever owns it. */
  instance(principal: string, id: string): Promise<OwnedInstanceRecord | undefined>;
  /** A principal's records, whoever owns them. */
  principalInstances(principal: string): Promise<OwnedInstanceRecord[]>;

  /** Finish the writes under way and close. */
  close(): Promise<void>;
}
