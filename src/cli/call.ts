// `gate call FILE [FUNCTION]`: run a program in this process, with standard
// input and output joined to its origin stream.

import { readFile } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { sharedEngine } from '../host/engine.ts';
import { ModuleCache } from '../host/module-cache.ts';
import { ProgramInstance } from '../host/program-instance.ts';
import { Cause, State, statusToText, type Status } from '../runtime/instance/status.ts';
import { Registry } from '../services/index.ts';
import { CliError } from './errors.ts';

export interface CallOptions {
  function?: string;
  debug?: boolean;
  fuel?: number;
  timeLimit?: number;
  memoryLimit?: number;
}

/** Runs the program and returns the process exit status. */
export async function callCommand(file: string, fn: string | undefined, options: CallOptions): Promise<number> {
  const bytes = await readProgram(file);
  const maxMemoryPages = options.memoryLimit !== undefined ? Math.ceil((options.memoryLimit * 1024 * 1024) / 65536) : undefined;
  const cache = new ModuleCache();
  let compiled;
  try {
    compiled = await cache.get(bytes, { maxMemoryPages });
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  let program: ProgramInstance;
  try {
    program = new ProgramInstance({
      engine: sharedEngine(),
      compiled,
      registry: new Registry(),
      context: { instance: crypto.randomUUID(), scope: [] },
      function: fn ?? options.function,
      debug: options.debug ? (chunk) => process.stderr.write(chunk) : undefined,
      fuelLimit: options.fuel,
      timeLimit: options.timeLimit !== undefined ? options.timeLimit * 1000 : undefined,
    });
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }

  const done = program.run();
  const input = Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
  const output = Writable.toWeb(process.stdout) as WritableStream<Uint8Array>;
  const connection = program.connect(input, output);
  const status = await done;
  await connection;
  return reportStatus(status);
}

async function readProgram(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CliError(`${file}: no such file`);
    if (e.code === 'EISDIR') throw new CliError(`${file}: is a directory`);
    throw new CliError(`${file}: ${e.message}`);
  }
}

/** Gate's exit status rule: the result when the program finished, 0 when suspended, 1 otherwise. */
function reportStatus(status: Status): number {
  const finished = status.state === State.HALTED || status.state === State.TERMINATED;
  if (finished && status.cause === Cause.NORMAL && !status.error) return status.result;
  if (status.state === State.SUSPENDED && status.cause === Cause.NORMAL) {
    process.stderr.write(`${statusToText(status)}\n`);
    return 0;
  }
  process.stderr.write(`gate: ${statusToText(status)}\n`);
  return 1;
}
