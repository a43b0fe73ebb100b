// Helpers for the service tests: run the guest programs of guest/services
// through ProgramInstance with a chosen registry and context, read their
// debug log, and move them through snapshot and restore.

import { ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import type { Status } from '../../src/runtime/instance/status.ts';
import type { ServiceContext } from '../../src/runtime/service/service.ts';
import type { Registry } from '../../src/services/registry.ts';
import { guest, testEngine } from '../helpers.ts';

const cache = new ModuleCache(null);

export interface Running {
  program: ProgramInstance;
  context: ServiceContext;
  done: Promise<Status>;
  log(): string;
  /** Resolves once the log contains text. */
  logged(text: string): Promise<void>;
}

export function contextFor(principal?: string, scope: readonly string[] = []): ServiceContext {
  return { instance: crypto.randomUUID(), scope, ...(principal !== undefined ? { principal } : {}) };
}

function watch(program: ProgramInstance, context: ServiceContext, chunks: Uint8Array[], waiters: (() => void)[]): Running {
  const log = (): string => Buffer.concat(chunks).toString();
  return {
    program,
    context,
    done: program.run(),
    log,
    logged(text) {
      return new Promise<void>((resolve) => {
        const check = (): void => {
          if (log().includes(text)) resolve();
          else waiters.push(check);
        };
        check();
      });
    },
  };
}

function sink(chunks: Uint8Array[], waiters: (() => void)[]): (c: Uint8Array) => void {
  return (c) => {
    chunks.push(c);
    for (const w of waiters.splice(0)) w();
  };
}

/** Start function of guest/services/<file>.wasm. */
export async function start(
  file: string,
  fn: string,
  registry: Registry,
  context: ServiceContext = contextFor(),
): Promise<Running> {
  const compiled = await cache.get(guest(`services/${file}.wasm`), {});
  const chunks: Uint8Array[] = [];
  const waiters: (() => void)[] = [];
  const program = new ProgramInstance({
    engine: testEngine(),
    compiled,
    registry,
    context,
    function: fn,
    debug: sink(chunks, waiters),
  });
  return watch(program, context, chunks, waiters);
}

/** Run to the end; the status and the debug log. */
export async function runToEnd(
  file: string,
  fn: string,
  registry: Registry,
  context?: ServiceContext,
): Promise<{ status: Status; log: string }> {
  const r = await start(file, fn, registry, context);
  const status = await r.done;
  return { status, log: r.log() };
}

/**
 * Suspend a running program, snapshot it, and restore the snapshot as a new
 * instance (a "new host": fresh module cache, given registry and context),
 * already running. The restored program's log starts empty.
 */
export async function migrate(
  r: Running,
  registry: Registry,
  context: ServiceContext = r.context,
): Promise<{ snapshot: Uint8Array; restored: Running }> {
  r.program.suspend();
  const status = await r.done;
  if (status.state !== 'SUSPENDED') throw new Error(`expected SUSPENDED, got ${JSON.stringify(status)}`);
  const snapshot = await snapshotInstance(r.program);
  const chunks: Uint8Array[] = [];
  const waiters: (() => void)[] = [];
  const program = await restoreInstance(snapshot, {
    cache: new ModuleCache(null),
    engine: testEngine(),
    registry,
    context,
    debug: sink(chunks, waiters),
  });
  return { snapshot, restored: watch(program, context, chunks, waiters) };
}
