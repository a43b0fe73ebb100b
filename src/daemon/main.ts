// `gate-daemon`: the per-user Gate server behind the `gate` command's local
// mode. It serves the /gate-0/ API on a Unix socket (mode 0600, directory
// 0700) and accepts unsigned local tokens there; whoever can open the socket
// is the user. `gate` starts it on demand; `gate-daemon --stop` stops it.
// Its instances persist: on stop, running ones are suspended and
// checkpointed, and they resume at the next start. Their debug logs go to
// files in the runtime directory (debug-logs.ts).

import type { Config } from '../server/config/config.ts';
import { parseDaemonArgs } from './config.ts';
import { InProcessExecutor, inProcessOptions, type Executor } from '../server/exec/executor.ts';
import { Logger } from '../server/obs/log.ts';
import { WorkerExecutor, workerExecutorOptions } from '../server/exec/worker-executor.ts';
import { startServer, type RunningServer } from '../server/server.ts';
import { DebugLoggingExecutor, DebugLogs } from './debug-logs.ts';
import { acquirePidFile, releasePidFile, runningPid } from '../server/store/pid-lock.ts';
import { daemonPaths } from './paths.ts';
import { ensurePrivateDir } from './runtime-dir.ts';
import { stopDaemon } from './stop.ts';
import { startServices, type RunningServices } from '../services/node/registry.ts';

const USAGE = `Usage: gate-daemon [options]

Runs the local Gate daemon in the foreground (the gate command starts it on
demand). Its socket, pid file and log are in $XDG_RUNTIME_DIR/gate (else
/tmp/gate-$UID); its modules and instances in $XDG_STATE_HOME/gate/daemon.

Options:
  --stop              stop the running daemon (running instances are suspended
                      and resume when it starts again)
  --status            tell whether the daemon runs
  -o KEY=VALUE        set one configuration key (may repeat)
  -f FILE, -F FILE    read a configuration file (-F forgets earlier ones)
  -d DIR              read DIR/*.toml
  -h, --help          show this help and the configuration keys

Configuration files: ~/.config/gate/daemon.toml, ~/.config/gate/daemon.d/*.toml.
`;

/** Seconds a shutdown may take before the daemon exits anyway. */
const SHUTDOWN_DEADLINE = 30;

/** Exit status when another daemon already serves the socket (as Gate's daemon does). */
const EXIT_ALREADY_RUNNING = 3;

async function main(argv: string[]): Promise<number> {
  const paths = daemonPaths();
  const rest: string[] = [];
  let action: 'run' | 'stop' | 'status' = 'run';
  for (const a of argv) {
    if (a === '--stop') action = 'stop';
    else if (a === '--status') action = 'status';
    else rest.push(a);
  }

  if (action === 'stop') return stopDaemon(paths);
  if (action === 'status') {
    const pid = runningPid(paths.pidFile);
    if (pid === undefined) {
      process.stdout.write('gate-daemon is not running\n');
      return 1;
    }
    process.stdout.write(`gate-daemon is running: pid ${pid}, socket ${paths.socket}\n`);
    return 0;
  }

  let config: Config;
  try {
    const parsed = parseDaemonArgs(rest, paths.dataDir);
    if (parsed.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (parsed.version) {
      process.stdout.write('gate-daemon (gate-ts) 0.1.0\n');
      return 0;
    }
    config = parsed.config;
  } catch (error) {
    process.stderr.write(`gate-daemon: ${(error as Error).message}\n`);
    return 2;
  }

  let server: RunningServer;
  let executor: Executor | undefined;
  let services: RunningServices | undefined;
  try {
    ensurePrivateDir(paths.runtimeDir);
    const holder = acquirePidFile(paths.pidFile);
    if (holder !== undefined) {
      process.stderr.write(`gate-daemon: already running (pid ${holder})\n`);
      return EXIT_ALREADY_RUNNING;
    }
    ensurePrivateDir(config.server.datadir);
    // Programs run in worker processes, which build the services themselves, so that none can hold
    // the daemon; with runtime.workers = 0 they run in its own thread.
    const log = new Logger(config.log.level, { format: config.log.format });
    let inner: Executor;
    if (config.runtime.workers > 0) {
      inner = new WorkerExecutor(workerExecutorOptions(config, (report) => log.error('worker lost', { ...report })));
    } else {
      services = await startServices(config.service);
      inner = new InProcessExecutor(inProcessOptions(config, config.server.datadir, services.registry));
    }
    executor = new DebugLoggingExecutor(inner, new DebugLogs(paths.runtimeDir));
    server = await startServer({ listen: { path: paths.socket }, dataDir: config.server.datadir, config, localUnsignedTokens: true, executor });
  } catch (error) {
    await executor?.close();
    services?.close();
    releasePidFile(paths.pidFile);
    process.stderr.write(`gate-daemon: ${(error as Error).message}\n`);
    return 1;
  }

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      // Never hang: past the deadline the executor (its worker processes) goes and the daemon exits.
      setTimeout(() => {
        process.stderr.write(`gate-daemon: shutdown took more than ${SHUTDOWN_DEADLINE} s, exiting now\n`);
        executor?.close().catch(() => {});
        releasePidFile(paths.pidFile);
        process.exit(1);
      }, SHUTDOWN_DEADLINE * 1000).unref();
      server.close().then(resolve, (error: unknown) => {
        process.stderr.write(`gate-daemon: shutdown: ${(error as Error).message}\n`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {});
  });
  await executor.close();
  services?.close();
  releasePidFile(paths.pidFile);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
process.exit();
