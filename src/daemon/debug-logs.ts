// The API has no channel for a program's debug log, so the daemon keeps one
// file per instance in its private runtime directory, which `gate call -d`
// follows while the call runs (Gate's daemon passed a file descriptor
// instead). Files are capped: past the cap the log starts over, with the
// previous part kept as <id>.log.1.

import { appendFileSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CreateOptions, ExecInstance, Executor, ProgramFacts } from '../server/exec/executor.ts';

const MAX_LOG_BYTES = 1024 * 1024;

export function debugLogFile(runtimeDir: string, instance: string): string {
  return path.join(runtimeDir, 'debug', `${instance}.log`);
}

export class DebugLogs {
  private readonly dir: string;
  private readonly runtimeDir: string;

  constructor(runtimeDir: string) {
    this.runtimeDir = runtimeDir;
    this.dir = path.join(runtimeDir, 'debug');
    // Logs of a previous daemon run are of no use to anyone now.
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { mode: 0o700 });
  }

  sink(instance: string): (chunk: Uint8Array) => void {
    if (!/^[0-9a-f-]{36}$/.test(instance)) return () => {};
    const file = debugLogFile(this.runtimeDir, instance);
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      // new log
    }
    return (chunk) => {
      if (size + chunk.byteLength > MAX_LOG_BYTES) {
        try {
          renameSync(file, `${file}.1`);
        } catch {
          // nothing to keep
        }
        size = 0;
      }
      try {
        appendFileSync(file, chunk, { mode: 0o600 });
        size += chunk.byteLength;
      } catch {
        // A full disk must not stop the program.
      }
    };
  }

  /** Number of log files, for tests and status. */
  count(): number {
    return readdirSync(this.dir).length;
  }
}

/** An executor whose instances write their debug logs to DebugLogs. */
export class DebugLoggingExecutor implements Executor {
  private readonly inner: Executor;
  private readonly logs: DebugLogs;

  constructor(inner: Executor, logs: DebugLogs) {
    this.inner = inner;
    this.logs = logs;
  }

  prepare(bytes: Uint8Array, hash: string, maxMemoryPages: number, owner?: string): Promise<ProgramFacts> {
    return this.inner.prepare(bytes, hash, maxMemoryPages, owner);
  }

  create(options: CreateOptions): Promise<ExecInstance> {
    return this.inner.create({ ...options, debug: options.debug ?? this.logs.sink(options.context.instance) });
  }

  workers(): { id: number; instances: number; stuck: boolean }[] {
    return this.inner.workers();
  }

  async freeze(): Promise<Set<string>> {
    return (await this.inner.freeze?.()) ?? new Set();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
