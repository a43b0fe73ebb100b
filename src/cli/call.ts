// `gate call --in-process FILE [FUNCTION]`: run a program, or continue a
// snapshot, in this process with standard input and output joined to its
// origin stream. The program gets the services the daemon would give it
// (gate-daemon's configuration files, principal `local`). Ctrl-\ suspends
// it and writes its snapshot to a file, which the same command continues.

import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parseDaemonArgs } from '../daemon/config.ts';
import { sharedEngine } from '../host/engine.ts';
import { ModuleCache } from '../host/module-cache.ts';
import { ProgramInstance } from '../host/program-instance.ts';
import { isSnapshot, restoreInstance, snapshotInstance } from '../host/snapshot.ts';
import { State, statusToJSON, type Status } from '../runtime/instance/status.ts';
import { LOCAL_PRINCIPAL } from '../server/api/auth.ts';
import { ConfigError } from '../server/config/config.ts';
import { startServices, type RunningServices } from '../services/node/registry.ts';
import { CliError } from './errors.ts';
import { readModuleFile } from './module-arg.ts';
import { reportCallEnd, type ApiStatus } from './status.ts';

export interface CallOptions {
  function?: string;
  debug?: boolean;
  fuel?: number;
  /** Wall-clock seconds from the start of the call. */
  timeLimit?: number;
  /** Seconds spent executing the program's code (waiting for I/O does not count). */
  cpuLimit?: number;
  memoryLimit?: number;
  json?: boolean;
}

/** Runs the program and returns the process exit status. */
export async function callCommand(file: string, fn: string | undefined, options: CallOptions): Promise<number> {
  const bytes = await readModuleFile(file);
  let services: RunningServices;
  try {
    services = await startServices(parseDaemonArgs([]).config.service, { log: (m) => process.stderr.write(`gate: ${m}\n`) });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw new CliError(`services: ${(error as Error).message}`);
  }
  try {
    return await callWith(services, file, bytes, fn ?? options.function, options);
  } finally {
    services.close();
  }
}

async function callWith(services: RunningServices, file: string, bytes: Uint8Array, fn: string | undefined, options: CallOptions): Promise<number> {
  const instance = crypto.randomUUID();
  const maxMemoryPages = options.memoryLimit !== undefined ? Math.ceil((options.memoryLimit * 1024 * 1024) / 65536) : undefined;
  const common = {
    engine: sharedEngine(),
    registry: services.registry,
    context: { principal: LOCAL_PRINCIPAL, instance, scope: [] },
    debug: options.debug ? (chunk: Uint8Array) => process.stderr.write(chunk) : undefined,
    fuelLimit: options.fuel,
    timeLimit: options.cpuLimit !== undefined ? options.cpuLimit * 1000 : undefined,
  };
  const cache = new ModuleCache();
  let program: ProgramInstance;
  let entry = fn;
  try {
    if (isSnapshot(bytes)) {
      program = await restoreInstance(bytes, { ...common, cache, maxMemoryPages, function: undefined });
      const state = program.status.state;
      if (state === State.SUSPENDED && fn) throw new CliError(`${file}: a suspended program continues where it was; no function may be given`);
      if (state === State.HALTED && !fn) throw new CliError(`${file}: the program has halted: give the function to run`);
      if (state !== State.SUSPENDED && state !== State.HALTED) return report(options, instance, program.status);
    } else {
      program = new ProgramInstance({ ...common, compiled: await cache.get(bytes, { maxMemoryPages }), function: fn });
      entry = undefined;
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${file}: ${(error as Error).message}`);
  }

  // Wall time: the user's clock, whatever the program waits for.
  let timedOut = false;
  const timer = options.timeLimit !== undefined ? setTimeout(() => ((timedOut = true), program.kill()), options.timeLimit * 1000) : undefined;
  // Ctrl-\ suspends, as with the daemon (Gate's SIGQUIT).
  const onQuit = () => {
    if (process.stderr.isTTY) process.stderr.write('\n');
    program.suspend();
  };
  process.on('SIGQUIT', onQuit);
  let status: Status;
  try {
    const done = program.run(entry ? { function: entry } : {});
    const input = Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
    const output = stdoutStream();
    const connection = program.connect(input, output);
    status = await done;
    await connection;
  } finally {
    clearTimeout(timer);
    process.off('SIGQUIT', onQuit);
  }
  if (timedOut && status.state === State.KILLED) status = { ...status, error: `time limit exceeded (--time-limit ${options.timeLimit} s)` };
  let snapshotFile: string | undefined;
  if (status.state === State.SUSPENDED) {
    snapshotFile = `${instance}.wasm`;
    writeFileSync(snapshotFile, await snapshotInstance(program));
  }
  return report(options, instance, status, snapshotFile);
}

/** Standard output as the program's stream; its end leaves stdout open for the --json report. */
function stdoutStream(): WritableStream<Uint8Array> {
  return new WritableStream({
    write: (chunk) => new Promise<void>((resolve, reject) => process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()))),
  });
}

function report(options: CallOptions, instance: string, status: Status, snapshotFile?: string): number {
  // A call's instance is transient, so returning from its function terminates it (as on a server).
  const api = statusToJSON(status.state === State.HALTED ? { ...status, state: State.TERMINATED } : status) as ApiStatus;
  const code = reportCallEnd(options.json === true, instance, api, snapshotFile !== undefined ? { snapshot: snapshotFile } : {});
  if (snapshotFile !== undefined && !options.json) {
    process.stderr.write(`gate: snapshot written to ${snapshotFile}; continue it with: gate call --in-process ${snapshotFile}\n`);
  }
  return code;
}
