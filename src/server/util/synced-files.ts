// Files written so that a crash leaves either nothing or the whole file
// under its name: bytes to a temporary name in the same directory, synced,
// renamed, then the directory synced. The module store and the hibernation
// snapshots of the hosting processes both write module files this way.

import { randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';

/** A temporary name in `dir` for what will become `name` there (starting with a dot: a restart removes leftovers). */
export function temporaryPath(dir: string, name: string): string {
  return path.join(dir, `.${name}.${process.pid}.${randomUUID()}`);
}

/** Write `bytes` to a new read-only file and sync it, off the thread. */
export async function writeSynced(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'w', 0o400);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Syncs of one directory: one covers every rename before it began, so concurrent writers share them. */
export class DirectorySync {
  private readonly dir: string;
  /** The sync under way, and the one that must follow it (renames after it began). */
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  sync(): Promise<void> {
    if (!this.current) {
      this.current = this.fsync().finally(() => (this.current = undefined));
      return this.current;
    }
    this.next ??= this.current.then(() => {
      this.next = undefined;
      return this.sync();
    });
    return this.next;
  }

  private async fsync(): Promise<void> {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
