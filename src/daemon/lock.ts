// The daemon's pid file doubles as its lock: created exclusively, holding the
// pid; a file whose process is gone is stale and replaced.

import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in the file, if the file exists and names a live process. */
export function runningPid(pidFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

/** Take the lock for this process; returns the pid of the holder when another live daemon has it. */
export function acquirePidFile(pidFile: string): number | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(pidFile, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = runningPid(pidFile);
      if (holder !== undefined && holder !== process.pid) return holder;
      try {
        unlinkSync(pidFile);
      } catch {
        // someone else removed it; try again
      }
    }
  }
  throw new Error(`cannot take the lock ${pidFile}`);
}

/** Remove the pid file if it is still ours. */
export function releasePidFile(pidFile: string): void {
  try {
    if (Number(readFileSync(pidFile, 'utf8').trim()) === process.pid) unlinkSync(pidFile);
  } catch {
    // already gone
  }
}
