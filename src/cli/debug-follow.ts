// Follow a debug log file the daemon writes (src/daemon/debug-logs.ts):
// copy what appears to stderr until stopped, then copy the rest.

import { closeSync, openSync, readSync, statSync } from 'node:fs';

export interface Follower {
  /** Copy what is left and stop. */
  stop(): void;
}

export function followFile(file: string, write: (chunk: Buffer) => void, intervalMs = 50): Follower {
  let offset = 0;
  const buffer = Buffer.alloc(65536);
  const pump = () => {
    let fd: number;
    try {
      if (statSync(file).size < offset) offset = 0; // the log started over
      fd = openSync(file, 'r');
    } catch {
      return; // not written yet
    }
    try {
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, offset);
        if (n === 0) break;
        offset += n;
        write(Buffer.from(buffer.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
  };
  const timer = setInterval(pump, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      pump();
    },
  };
}
