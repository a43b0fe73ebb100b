// `gate-server`: with no arguments it serves 127.0.0.1:6473 with its data in
// the user's state directory. SIGINT/SIGTERM close it gracefully: running
// instances are suspended and checkpointed, and resume at the next start.

import { mkdirSync } from 'node:fs';
import { listenAddress, translateArgs } from './config/args.ts';
import { describe, parseArgs, type Config } from './config/config.ts';
import type { Executor } from './exec/executor.ts';
import { Logger } from './obs/log.ts';
import { startServer, type RunningServer } from './server.ts';

const USAGE = `Usage: gate-server [options]

Options:
  --listen ADDR       host:port, or a Unix socket path (default 127.0.0.1:6473)
  --data-dir DIR      inventory and modules (default \${XDG_STATE_HOME}/gate)
  --database URL      postgres://USER@HOST:PORT/DB: share the inventory with
                      the other servers naming it (docs/cluster.md)
  --config FILE       read a TOML configuration file (may repeat)
  -o KEY=VALUE        set one configuration key (may repeat)
  -f FILE, -F FILE    read a configuration file (-F forgets earlier ones)
  -d DIR              read DIR/*.toml
  -h, --help          show this help and the configuration keys
  --version           print the version

Configuration files are read from ~/.config/gate/server.toml and
~/.config/gate/server.d/*.toml unless -F is given. See docs/server.md.
`;

/** Seconds a shutdown may take before the process exits anyway (worker processes are killed with it). */
const SHUTDOWN_DEADLINE = 30;

/**
 * With runtime.workers > 0 on a TCP address, the server is that many shard
 * processes that each serve HTTP and run the instances of their requests
 * (shards/supervisor.ts). On a Unix socket (SO_REUSEPORT is for TCP), or
 * as one of several servers on PostgreSQL (database.url), HTTP is served
 * here and instances run in that many worker processes
 * (workerExecutorOptions). With 0, everything runs in this thread.
 */
async function workerExecutor(config: Config): Promise<Executor | undefined> {
  if (config.runtime.workers <= 0) return undefined;
  const { WorkerExecutor, workerExecutorOptions } = await import('./exec/worker-executor.ts');
  const log = new Logger(config.log.level, { format: config.log.format });
  return new WorkerExecutor(workerExecutorOptions(config, (report) => log.error('worker lost', { ...report })));
}

async function main(): Promise<void> {
  let config: Config;
  try {
    const parsed = parseArgs(translateArgs(process.argv.slice(2)));
    if (parsed.help) {
      process.stdout.write(`${USAGE}\nConfiguration keys and current values:\n${describe(parsed.config).join('\n')}\n`);
      return;
    }
    if (parsed.version) {
      process.stdout.write('gate-server (gate-ts) 0.1.0\n');
      return;
    }
    config = parsed.config;
  } catch (error) {
    process.stderr.write(`gate-server: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }

  let server: RunningServer;
  let executor: Executor | undefined;
  try {
    const listen = listenAddress(config.http.addr);
    mkdirSync(config.server.datadir, { recursive: true, mode: 0o700 });
    // Several servers on one PostgreSQL (database.url) serve HTTP in one process each.
    if (config.runtime.workers > 0 && !('path' in listen) && !config.database.url) {
      const { startShards } = await import('./shards/supervisor.ts');
      const log = new Logger(config.log.level, { format: config.log.format });
      server = await startShards({ listen, dataDir: config.server.datadir, config, log, local: config.access.local });
    } else {
      executor = await workerExecutor(config);
      server = await startServer({ listen, dataDir: config.server.datadir, config, executor });
    }
  } catch (error) {
    await executor?.close();
    process.stderr.write(`gate-server: ${(error as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const exitNow = (why: string) => {
    process.stderr.write(`gate-server: ${why}, exiting now\n`);
    // Worker processes end with the server (they watch for it), and killing them here makes it immediate.
    executor?.close().catch(() => {});
    process.exit(1);
  };
  const stop = (signal: string) => {
    if (stopping) exitNow(`${signal} again`);
    stopping = true;
    setTimeout(() => exitNow(`shutdown took more than ${SHUTDOWN_DEADLINE} s`), SHUTDOWN_DEADLINE * 1000).unref();
    server
      .close()
      .then(() => executor?.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`gate-server: shutdown failed: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Said only now: whoever waits for this line may signal at once (standard output to a pipe is written synchronously).
  process.stdout.write(`gate-server listening on ${server.url}\n`);
}

await main();
