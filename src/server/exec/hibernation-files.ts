// Hibernation snapshots as module files of the data directory: named by
// their SHA-256 and written as the store writes modules (a temporary name
// starting with a dot, fsync, rename, the directory synced), so that the
// server records each as the instance's checkpoint as it is, and a restart
// finds it. Written here, in the worker process, with asynchronous I/O:
// the server's thread only records them.

import { createHash, randomUUID } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { HibernationStorage } from '../../host/hibernation.ts';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class HibernationFiles implements HibernationStorage {
  private readonly dir: string;
  /** The directory sync under way, and whether another must follow it (renames after it began). */
  private dirSync: Promise<void> | undefined;
  private dirSyncAgain: Promise<void> | undefined;

  constructor(moduleDir: string) {
    this.dir = moduleDir;
  }

  async write(bytes: Uint8Array): Promise<string> {
    const hash = sha256(bytes);
    const tmp = path.join(this.dir, `.${hash}.${process.pid}.${randomUUID()}`);
    const file = await open(tmp, 'w', 0o400);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path.join(this.dir, hash));
    await this.syncDir();
    return hash;
  }

  async read(name: string): Promise<Uint8Array> {
    const bytes = new Uint8Array(await readFile(path.join(this.dir, name)));
    if (sha256(bytes) !== name) throw new Error(`hibernation snapshot ${name} is damaged`);
    return bytes;
  }

  discard(name: string): void {
    // Only ever one of ours that no record names yet.
    void rm(path.join(this.dir, name), { force: true }).catch(() => {});
  }

  /** One directory sync covers every rename before it began: concurrent writes share them. */
  private syncDir(): Promise<void> {
    if (!this.dirSync) {
      this.dirSync = this.fsyncDir().finally(() => (this.dirSync = undefined));
      return this.dirSync;
    }
    this.dirSyncAgain ??= this.dirSync.then(() => {
      this.dirSyncAgain = undefined;
      return this.syncDir();
    });
    return this.dirSyncAgain;
  }

  private async fsyncDir(): Promise<void> {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
