// A pid file as a lock (gate-daemon's runtime directory, gate-server's data
// directory): it appears at once with the holder's pid in it (written to a
// private file first, then hard-linked into place, so no one ever reads it
// empty); a file whose process is gone is stale and replaced.

import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

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

/** Take the lock for this process; returns the pid of the holder when another live process has it. */
export function acquirePidFile(pidFile: string): number | undefined {
  const mine = `${pidFile}.${process.pid}`;
  writeFileSync(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, pidFile);
        return undefined;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = runningPid(pidFile);
        if (holder === process.pid) return undefined; // this process holds it already (an embedding program's second server)
        if (holder !== undefined) return holder;
        // Stale: remove it, unless another process has just replaced it.
        if (runningPid(pidFile) === undefined) removeIfStale(pidFile);
      }
    }
    throw new Error(`cannot take the lock ${pidFile}`);
  } finally {
    unlinkSync(mine);
  }
}

/** Remove the pid file if it is still ours. */
export function releasePidFile(pidFile: string): void {
  try {
    if (Number(readFileSync(pidFile, 'utf8').trim()) === process.pid) unlinkSync(pidFile);
  } catch {
    // already gone
  }
}

function removeIfStale(pidFile: string): void {
  try {
    unlinkSync(pidFile);
  } catch {
    // someone else removed it; try again
  }
}
