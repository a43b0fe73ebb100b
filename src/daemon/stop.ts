// `gate-daemon --stop`: signal the daemon named by the pid file and wait for
// it to finish its graceful shutdown (instances suspended and saved).

import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive, runningPid } from '../server/store/pid-lock.ts';
import type { DaemonPaths } from './paths.ts';

const GRACE_MS = 30_000;

export async function stopDaemon(paths: DaemonPaths): Promise<number> {
  const pid = runningPid(paths.pidFile);
  if (pid === undefined) {
    process.stderr.write('gate-daemon: not running\n');
    return 0;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + GRACE_MS;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      process.stderr.write(`gate-daemon: pid ${pid} did not stop within ${GRACE_MS / 1000} s\n`);
      return 1;
    }
    await sleep(25);
  }
  return 0;
}
