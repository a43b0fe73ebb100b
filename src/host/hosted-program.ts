// A program instance as a host keeps it: in memory, or dropped and kept
// only as a snapshot in storage (a few hundred bytes of bookkeeping instead
// of an instance, its services and its memory):
//
// - dormant: its run waits (for a client, or its timer) and none of its
//   services has anything under way; the snapshot is its hibernation
//   snapshot. Whatever needs it (a client connecting, its timer, an
//   operation) restores it, and its run goes on waiting as if it had never
//   stopped (Instance continueWait). Seen from outside it is one run,
//   RUNNING throughout.
// - stored: it is stopped (suspended, halted, ended); the snapshot is an
//   ordinary one, restored when it is resumed or inspected.
//
// A host builds one per instance with a Hibernator (hibernation.ts), which
// writes the snapshots and decides when; nothing here is bound to Node.

import { State, type Status } from '../runtime/instance/status.ts';
import type { InstanceState } from '../runtime/snapshot/state.ts';
import type { Hibernated, HibernationListener, Hibernator, HibernationStorage, Resting } from './hibernation.ts';
import type { ProgramInstance } from './program-instance.ts';
import { captureInstance, snapshotInstance } from './snapshot.ts';

const RUNNING: Status = { state: State.RUNNING, cause: 'NORMAL', result: 0 };

export interface HostedProgramOptions {
  hibernator: Hibernator;
  storage: HibernationStorage;
  /**
   * Restore the instance from a snapshot on the host's engine (restoreInstance
   * with the instance's services, limits and hibernation): `continueWait`
   * for a dormant run, otherwise as a stopped instance.
   */
  restore: (bytes: Uint8Array, continueWait: boolean) => Promise<ProgramInstance>;
  /** It may leave memory (a persistent instance, its snapshots kept as its checkpoints): dropped when idle, stored when stopped. */
  drop: boolean;
  /** It hibernated, or it was stored: the snapshot is in the storage. */
  onHibernated?: (h: Hibernated) => void;
  /** It is in memory again after hibernating: woken, or wanted. */
  onWoken?: () => void;
  /** A new ProgramInstance holds it (after a restore). */
  onResident?: (program: ProgramInstance) => void;
}

/** Where the instance is. */
type Residence =
  | { kind: 'resident'; program: ProgramInstance }
  /** Dropped while its run waits: `name` is its hibernation snapshot; `timer` ends the wait when it has a timeout. */
  | { kind: 'dormant'; name: string; wakeAt: number | null; timer: ReturnType<typeof setTimeout> | undefined }
  /** Dropped while stopped (with this status): `name` is its snapshot. */
  | { kind: 'stored'; name: string; status: Status }
  /** On its way back into memory; `status` is what it was meanwhile. */
  | { kind: 'restoring'; done: Promise<void>; status: Status }
  /** Its snapshot could not be restored: its run ended with this status. */
  | { kind: 'lost'; status: Status }
  | { kind: 'disposed' };

export class HostedProgram implements HibernationListener, Resting {
  private readonly options: HostedProgramOptions;
  private residence: Residence;
  /** The run seen from outside: it spans drops and restores. */
  private run_: { settle: (s: Status) => void; fail: (e: unknown) => void } | undefined;
  /** The host is closing: a dormant instance stays dormant. */
  private frozen = false;

  /** An instance in memory, or (with `dormant`) one dropped earlier whose run waits in its snapshot. */
  constructor(options: HostedProgramOptions, from: { program: ProgramInstance } | { dormant: { name: string; wakeAt: number | null } }) {
    this.options = options;
    if ('program' in from) {
      this.residence = { kind: 'resident', program: from.program };
      this.track(from.program);
      this.rest(true);
    } else {
      this.residence = { kind: 'dormant', name: from.dormant.name, wakeAt: from.dormant.wakeAt, timer: undefined };
    }
  }

  /** The instance in memory, if it is. */
  get program(): ProgramInstance | undefined {
    return this.residence.kind === 'resident' ? this.residence.program : undefined;
  }

  /** Hibernated: dropped while its run waits, or in memory with its body in storage. */
  get hibernating(): boolean {
    const r = this.residence;
    return r.kind === 'dormant' || (r.kind === 'resident' && this.run_ !== undefined && !r.program.instance.materialized);
  }

  get status(): Status {
    if (this.run_) return RUNNING;
    const r = this.residence;
    if (r.kind === 'resident') return r.program.status;
    if (r.kind === 'stored' || r.kind === 'restoring' || r.kind === 'lost') return r.status;
    return RUNNING;
  }

  /**
   * Start or resume; resolves when the run stops (rejects as ProgramInstance.run
   * does). An instance created dormant goes on with the run it was dropped in.
   */
  run(options: { function?: string } = {}): Promise<Status> {
    const r = this.residence;
    if (this.run_) return Promise.reject(new Error('instance is running'));
    if (r.kind === 'lost' || r.kind === 'disposed') return Promise.reject(new Error(r.kind === 'lost' ? 'instance state was lost' : 'instance was disposed'));
    const promise = new Promise<Status>((settle, fail) => (this.run_ = { settle, fail }));
    this.rest(false);
    if (r.kind === 'dormant') this.arm(r);
    else if (r.kind === 'resident') this.follow(r.program, r.program.run(options));
    else void this.resident().then((p) => p && this.follow(p, p.run(options)));
    return promise;
  }

  /** Join a client (see ProgramInstance.connect); a dropped instance is restored for it. */
  async connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: (id: number) => void,
  ): Promise<boolean> {
    const program = await this.resident();
    if (!program || signal?.aborted) return false;
    return program.connect(input, output, signal, onJoin);
  }

  suspend(): void {
    if (this.residence.kind === 'stored') return; // stopped already
    void this.resident().then((p) => p?.suspend());
  }

  kill(): void {
    void this.resident().then((p) => p?.kill());
  }

  async snapshot(): Promise<Uint8Array> {
    const r = this.residence;
    // A stored one's snapshot is what it was stored as (the same state gives the same bytes).
    if (r.kind === 'stored') return this.options.storage.read(r.name);
    const p = await this.resident();
    if (!p) throw new Error('instance state was lost');
    return snapshotInstance(p);
  }

  async capture(): Promise<InstanceState> {
    const p = await this.resident();
    if (!p) throw new Error('instance state was lost');
    return captureInstance(p);
  }

  /** Forget it: a run in progress is killed (its end is still reported), its memory goes back to the pool. */
  dispose(): void {
    const r = this.residence;
    this.residence = { kind: 'disposed' };
    this.options.hibernator.resting(this, false);
    if (r.kind === 'resident') {
      r.program.dispose(); // its run ends KILLED: see ended()
      if (r.program.status.state !== State.RUNNING) this.settle(r.program.status);
      return;
    }
    if (r.kind === 'dormant' && r.timer !== undefined) clearTimeout(r.timer);
    this.settle({ state: State.KILLED, cause: 'NORMAL', result: 0 });
  }

  /**
   * The host is closing: if its run is hibernated, it stays so (nothing
   * wakes it any more) and true is returned: its snapshot holds it.
   */
  freeze(): boolean {
    const r = this.residence;
    if (r.kind === 'dormant') {
      this.frozen = true;
      if (r.timer !== undefined) clearTimeout(r.timer);
      r.timer = undefined;
      return true;
    }
    return r.kind === 'resident' && this.run_ !== undefined && this.options.hibernator.freeze(r.program);
  }

  // From the Hibernator.

  hibernated(h: Hibernated): void {
    this.options.onHibernated?.(h);
    const r = this.residence;
    if (!h.idle || !this.options.drop || r.kind !== 'resident' || !this.run_) return;
    // Nothing under way anywhere: keep only the snapshot.
    const dormant: Residence = { kind: 'dormant', name: h.name, wakeAt: h.wakeAt, timer: undefined };
    this.residence = dormant;
    r.program.dispose();
    this.arm(dormant);
  }

  woken(): void {
    this.options.onWoken?.();
  }

  /** Resting: stopped and in memory, it may give its memory back: its snapshot is stored and it is dropped. */
  async giveBack(): Promise<boolean> {
    const r = this.residence;
    if (!this.options.drop || r.kind !== 'resident' || this.run_ || !r.program.instance.materialized) return false;
    const program = r.program;
    let name: string;
    let bytes: Uint8Array;
    try {
      bytes = await snapshotInstance(program);
      name = await this.options.storage.write(bytes);
    } catch {
      return false; // a state that cannot be written stays in memory
    }
    // The file is never discarded: it is (byte for byte) the checkpoint the server keeps of a stopped instance.
    if (this.residence !== r || this.run_) return false;
    this.residence = { kind: 'stored', name, status: program.status };
    program.dispose();
    this.options.onHibernated?.({ name, size: bytes.byteLength, idle: true, wakeAt: null, waiting: false });
    return true;
  }

  // Inside.

  private track(program: ProgramInstance): void {
    this.options.hibernator.listen(program, this);
    this.options.onResident?.(program);
  }

  /** Tell the Hibernator whether it rests (stopped, in memory). */
  private rest(resting: boolean): void {
    if (!this.options.drop) return;
    const r = this.residence;
    this.options.hibernator.resting(this, resting && r.kind === 'resident' && !this.run_ && r.program.status.state !== State.RUNNING);
  }

  /** Settle the outside run when this program's run ends, unless it was dropped meanwhile. */
  private follow(program: ProgramInstance, running: Promise<Status>): void {
    running.then(
      (status) => this.ended(program, () => this.settle(status)),
      (error: unknown) => this.ended(program, () => this.fail(error)),
    );
  }

  private ended(program: ProgramInstance, tell: () => void): void {
    const r = this.residence;
    // Dropped (or replaced by a restore): the run goes on elsewhere. Disposed: it was killed.
    if (r.kind !== 'disposed' && !(r.kind === 'resident' && r.program === program)) return;
    tell();
    this.rest(true);
  }

  private settle(status: Status): void {
    const run = this.run_;
    this.run_ = undefined;
    run?.settle(status);
  }

  private fail(error: unknown): void {
    const run = this.run_;
    this.run_ = undefined;
    run?.fail(error);
  }

  /** A dormant instance's timer restores it when its wait times out. */
  private arm(r: Extract<Residence, { kind: 'dormant' }>): void {
    if (r.wakeAt === null || r.timer !== undefined || this.frozen) return;
    r.timer = setTimeout(() => {
      r.timer = undefined;
      void this.resident();
    }, Math.max(0, r.wakeAt - Date.now()));
  }

  /** The instance in memory: restored first when it was dropped. Undefined when its state was lost or it was disposed. */
  private async resident(): Promise<ProgramInstance | undefined> {
    for (;;) {
      const r = this.residence;
      if (r.kind === 'resident') return r.program;
      if (r.kind === 'lost' || r.kind === 'disposed') return undefined;
      if (r.kind === 'restoring') {
        await r.done;
        continue;
      }
      if (this.frozen) return new Promise(() => {}); // the host is closing: it stays in its snapshot
      const waiting = r.kind === 'dormant';
      if (waiting && r.timer !== undefined) clearTimeout(r.timer);
      const status = waiting ? RUNNING : r.status;
      const done = this.restore(r.name, waiting, status);
      this.residence = { kind: 'restoring', done, status };
      await done;
    }
  }

  private async restore(name: string, waiting: boolean, status: Status): Promise<void> {
    let program: ProgramInstance;
    try {
      program = await this.options.restore(await this.options.storage.read(name), waiting);
    } catch (error) {
      if (this.residence.kind !== 'restoring') return;
      const lost: Status = { state: State.KILLED, cause: 'INTERNAL', result: 0, error: `instance state could not be restored: ${(error as Error).message}` };
      this.residence = { kind: 'lost', status: waiting ? lost : { ...status, ...lost } };
      this.settle(lost);
      return;
    }
    if (this.residence.kind !== 'restoring') {
      program.dispose(); // disposed meanwhile
      return;
    }
    this.residence = { kind: 'resident', program };
    this.track(program);
    this.options.onWoken?.();
    if (waiting && this.run_) this.follow(program, program.run());
    else this.rest(true);
  }
}
