// Local mode talks to the per-user daemon; when its socket does not answer,
// start it (detached, logging to its runtime directory) and wait until it does.

import { spawn } from 'node:child_process';
import { openSync, readFileSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonPaths, type DaemonPaths } from '../daemon/paths.ts';
import { ensurePrivateDir } from '../daemon/runtime-dir.ts';

// As in http-client.ts: the CommonJS view of node:http, which loads no undici.
const http = process.getBuiltinModule('node:http');
import { CliError } from './errors.ts';

const DAEMON_BIN = fileURLToPath(new URL('../../bin/gate-daemon.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const EXIT_ALREADY_RUNNING = 3;

/** Does something answer HTTP on the socket (a daemon still loading its instances answers 503)? */
function daemonAnswers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/gate-0/', method: 'HEAD', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode !== 503);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

/** Start the daemon unless it is already answering; resolves when it answers. */
export async function ensureDaemon(paths: DaemonPaths = daemonPaths()): Promise<void> {
  if (await daemonAnswers(paths.socket)) return;
  try {
    ensurePrivateDir(paths.runtimeDir);
  } catch (error) {
    throw new CliError(`cannot start the gate daemon: ${(error as Error).message}`);
  }
  const log = openSync(paths.logFile, 'a', 0o600);
  const child = spawn(process.execPath, [DAEMON_BIN], { detached: true, stdio: ['ignore', log, log], env: process.env });
  closeSync(log);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let delay = 20; Date.now() < deadline; delay = Math.min(delay * 2, 250)) {
    await sleep(delay);
    if (await daemonAnswers(paths.socket)) return;
    // Another client's daemon won the race: keep waiting for it.
    if (exited !== undefined && exited !== EXIT_ALREADY_RUNNING) {
      throw new CliError(`the gate daemon failed to start: ${lastLine(paths.logFile)} (log: ${paths.logFile})`);
    }
  }
  throw new CliError(`the gate daemon did not start within ${START_TIMEOUT_MS / 1000} s (log: ${paths.logFile})`);
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return lines[lines.length - 1] || 'no message';
  } catch {
    return 'no message';
  }
}
