// Snapshots of program instances: write one from a stopped instance, and
// restore an instance from one, on this host or any other. Nothing here is
// bound to Node: the browser host (src/browser) restores with it too.

import { ProgramInstance, type ProgramInstanceOptions } from './program-instance.ts';
import { InstanceError, type CompiledModule } from '../runtime/instance/instance.ts';
import { SnapshotError } from '../runtime/snapshot/format.ts';
import { StackMismatch } from '../runtime/instance/portable-stack.ts';
import { instrumentationOf } from '../runtime/snapshot/instrumentation.ts';
import { readSnapshot } from '../runtime/snapshot/read.ts';
import { hasSnapshotSection, writeSnapshot, type Instrumentation } from '../runtime/snapshot/write.ts';
import { savesPortableStacks, type PrepareOptions } from '../runtime/prepare/prepare.ts';
import type { InstanceState } from '../runtime/snapshot/state.ts';

export { SnapshotError };

const instrumentations = new WeakMap<CompiledModule, Promise<Instrumentation>>();

function instrumentation(compiled: CompiledModule): Promise<Instrumentation> {
  let i = instrumentations.get(compiled);
  if (!i) {
    i = instrumentationOf(compiled.prepared, compiled.program);
    instrumentations.set(compiled, i);
  }
  return i;
}

/** Whether a module is a snapshot (has Gate's snapshot section). */
export function isSnapshot(bytes: Uint8Array): boolean {
  return hasSnapshotSection(bytes);
}

/** The snapshot module of a stopped instance (suspended, halted, terminated or killed). */
export async function snapshotInstance(p: ProgramInstance): Promise<Uint8Array> {
  await p.instance.materialize();
  const state = p.instance.capture();
  return writeSnapshot(p.compiled.program, state, await instrumentation(p.compiled));
}

/** Memory and globals of a stopped instance (its body is loaded back first if it is in storage). */
export async function captureInstance(p: ProgramInstance): Promise<InstanceState> {
  await p.instance.materialize();
  return p.instance.capture();
}

/**
 * The snapshot of an instance whose run waits, for hibernation: a program
 * suspended in its wait, which a restore with `continueWait` continues as
 * if it had never stopped (Instance.captureWaiting). Null when it does not
 * wait now or a service cannot be saved while it runs.
 */
export async function snapshotWaiting(p: ProgramInstance): Promise<{ bytes: Uint8Array; idle: boolean; wait: number; wakeAfter: bigint | null } | null> {
  const captured = p.instance.captureWaiting();
  if (!captured) return null;
  const bytes = await writeSnapshot(p.compiled.program, captured.state, await instrumentation(p.compiled));
  return { bytes, idle: captured.idle, wait: captured.wait, wakeAfter: captured.wakeAfter };
}

/** Where a restore gets the prepared program part (ModuleCache on Node, BrowserModules in a browser). */
export interface RestoreModules {
  getForRestore(part: Uint8Array, pages: number, options: PrepareOptions): Promise<CompiledModule>;
}

export interface RestoreOptions extends Omit<ProgramInstanceOptions, 'compiled' | 'restore'>, PrepareOptions {
  cache: RestoreModules;
}

/**
 * An instance continuing the state in a snapshot module. A suspended one
 * resumes where it stopped when run; a halted one can be run with a
 * function; a terminated or killed one stays as it was.
 */
export async function restoreInstance(bytes: Uint8Array, options: RestoreOptions): Promise<ProgramInstance> {
  const snapshot = await readSnapshot(bytes);
  const { cache, maxMemoryPages, abi, everything: _everything, ...rest } = options;
  const pages = snapshot.state.memory.byteLength / 65536;
  let compiled = await cache.getForRestore(snapshot.program, pages, { maxMemoryPages, abi });
  const pending = snapshot.state.pending;
  if (pending && options.function) {
    throw new InstanceError('ERR_ENTRY_SUSPENDED', 'entry function may not be specified for suspended program');
  }
  if (pending && pending.stack.byteLength > 0 && snapshot.instrumenter) {
    const mine = await instrumentation(compiled);
    const theirs = snapshot.instrumenter;
    if (theirs.version !== mine.version && !(savesPortableStacks(theirs.version) && savesPortableStacks(mine.version))) {
      throw new SnapshotError(
        `snapshot was made by instrumentation ${theirs.version}; this runtime uses ${mine.version}`,
        'ERR_SNAPSHOT_INCOMPATIBLE',
      );
    }
    if (!theirs.codeHash.every((b, i) => b === mine.codeHash[i])) {
      throw new SnapshotError(
        "snapshot stack does not match this runtime's instrumentation of the program",
        'ERR_SNAPSHOT_INCOMPATIBLE',
      );
    }
  }
  try {
    return new ProgramInstance({ ...rest, function: undefined, compiled, restore: snapshot.state });
  } catch (error) {
    if (!(error instanceof StackMismatch)) throw stackError(error);
    // A stack saved elsewhere may stop where this preparation cannot resume
    // (Gate suspends at any function entry): prepare every function to resume.
    if (compiled.prepared.info.everything) throw stackError(error);
    compiled = await cache.getForRestore(snapshot.program, pages, { maxMemoryPages, abi, everything: true });
    try {
      return new ProgramInstance({ ...rest, function: undefined, compiled, restore: snapshot.state });
    } catch (again) {
      throw stackError(again);
    }
  }
}

/** A stack the program cannot continue from is a bad snapshot, not an internal error. */
function stackError(error: unknown): unknown {
  if (error instanceof StackMismatch) return new SnapshotError(error.message, 'ERR_SNAPSHOT_STACK');
  return error;
}
