// Hibernation snapshots as module files of the data directory: named by
// their SHA-256 and written as the store writes modules (a temporary name
// starting with a dot, fsync, rename, the directory synced), so that the
// server records each as the instance's checkpoint as it is, and a restart
// finds it. Written here, in the worker process, with asynchronous I/O:
// the server's thread only records them.

import { createHash } from 'node:crypto';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { HibernationStorage } from '../../host/hibernation.ts';
import { DirectorySync, temporaryPath, writeSynced } from '../util/synced-files.ts';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class HibernationFiles implements HibernationStorage {
  private readonly dir: string;
  private readonly dirSync: DirectorySync;

  constructor(moduleDir: string) {
    this.dir = moduleDir;
    this.dirSync = new DirectorySync(moduleDir);
  }

  async write(bytes: Uint8Array): Promise<string> {
    const hash = sha256(bytes);
    const tmp = temporaryPath(this.dir, hash);
    await writeSynced(tmp, bytes);
    await rename(tmp, path.join(this.dir, hash));
    await this.dirSync.sync();
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
}
