// What an instance is, between runs: everything a snapshot must carry to
// continue it exactly. The instance captures it; the snapshot writer turns it
// into a module; the reader turns a module back into it.

import type { ChannelState } from '../instance/channel.ts';
import type { Status } from '../instance/status.ts';

export type GlobalValue = number | bigint;

/** Execution that has not finished: where the program resumes. */
export interface PendingExecution {
  /** Running the start function, or the entry function. */
  phase: 'start' | 'entry';
  /** Entry function export name; undefined when there is none. */
  entry?: string;
  /** The suspended wasm stack as Gate's portable stack (docs/snapshot.md); empty when the phase has not begun. */
  stack: Uint8Array;
  /** Set when the program was waiting in a blocking import: its memo. */
  waitMemo?: bigint[];
  /**
   * Set (with waitMemo) when the run hibernated in its wait rather than
   * stopped: what it waits for, so that it can go on waiting as if it had
   * never stopped (InstanceOptions.continueWait). Restored otherwise, it
   * is an ordinary suspended program.
   */
  wait?: {
    readable: boolean;
    writable: boolean;
    /** Nanoseconds the wait had left (null: none). */
    timeout: bigint | null;
    /** Real time (ns since the epoch) when it was captured: the clock runs on from there. */
    realtime: bigint;
  };
}

export interface InstanceState {
  status: Status;
  /** Linear memory contents (a whole number of pages). */
  memory: Uint8Array;
  /** Current values of the program's mutable globals, by global index. */
  globals: Map<number, GlobalValue>;
  channel: ChannelState;
  /** Instance monotonic clock (ns) when it stopped. */
  monotonic: bigint;
  /** Present while the program has more to run (SUSPENDED). */
  pending?: PendingExecution;
  /** The program's start function, when it has one (kept across snapshots). */
  start?: number;
  fuelUsed: number;
  /** Milliseconds of run time used. */
  timeUsed: number;
  /** Programs that change their tables: each defined table's elements, as function indexes (null for none). */
  tables?: Map<number, (number | null)[]>;
  /** Passive segments the program has dropped. */
  dropped?: DroppedSegments;
}

export interface DroppedSegments {
  data: number[];
  elem: number[];
}
