// The interface between the ABI functions (what a program imports) and the
// instance that runs them. The ABI layer implements Gate's import semantics
// on top of it; the instance layer implements it with real memory, clocks,
// packet buffers and stack machinery.

import type { Cause } from '../instance/status.ts';

/** What a blocking import waits for. */
export interface WaitRequest {
  /** Wake when the host→program stream has a byte. Gate always watches this in io_N. */
  readable: boolean;
  /** Wake when the program→host stream can take a byte. */
  writable: boolean;
  /** Nanoseconds to wait at most, already rounded to the time resolution; null = no timeout. */
  timeout: bigint | null;
  /**
   * Values the caller wants back when it is re-entered after the wait (for
   * example the clock readings taken before waiting). Saved with snapshots.
   */
  memo?: bigint[];
}

/** Readiness after a wait. Both false after a timeout or an interruption (suspension). */
export interface WaitOutcome {
  readable: boolean;
  writable: boolean;
  memo: bigint[];
}

export interface AbiHost {
  /** The program's memory (memory 0) as it is now. Re-read after anything that may grow it. */
  bytes(): Uint8Array;
  view(): DataView;

  /** Effective time resolution R in nanoseconds (a power of two, abi.md §2.3). */
  readonly timeResolution: bigint;
  /** Host wall clock, ns since the Unix epoch, before rounding. */
  realtime(): bigint;
  /** Instance monotonic clock in ns (instance-relative, abi.md §2.3), before rounding. */
  monotonic(): bigint;

  /**
   * Take up to n bytes from this run's random pool (16 bytes per run). Returns
   * the bytes taken: fewer than n when the pool ran dry.
   */
  random(n: number): Uint8Array;

  /** Whether the debug log is being kept (when not, writes are discarded unchecked). */
  readonly debugEnabled: boolean;
  /** Append to the debug log. */
  debug(data: Uint8Array): void;

  /** At least one byte of the host→program stream is waiting. */
  readable(): boolean;
  /** The program→host stream can take at least one byte. */
  writable(): boolean;
  /** Non-blocking read of the host→program stream into dst; returns bytes moved. */
  read(dst: Uint8Array): number;
  /** Non-blocking write of src to the program→host stream; returns bytes accepted. */
  write(src: Uint8Array): number;

  /** Returns the "started or resumed" flag and clears it (abi.md §2.7). */
  takeResumedFlag(): boolean;

  /**
   * Wait for readiness. Returns the outcome at once when something watched is
   * ready or the timeout is zero. Otherwise the instance starts unwinding and
   * null is returned: the caller must return immediately (any value). Later the
   * same import is called again with the same arguments, and this call then
   * returns the outcome of the wait, with the memo given the first time.
   * Callers must therefore have no side effects before calling wait.
   */
  wait(request: WaitRequest): WaitOutcome | null;

  /**
   * End the run with an ABI deficiency (the instance becomes SUSPENDED). The
   * caller must return immediately; on resume the same import call starts again
   * from the beginning with the same arguments.
   */
  deficiency(): void;

  /** End the run by proc_exit. Never returns. */
  exit(status: number): never;

  /** End the run with a trap (for example MEMORY_ACCESS_OUT_OF_BOUNDS). Never returns. */
  trap(cause: Cause): never;
}
