// Prepared modules of a browser tab's worker: programs are prepared here with
// the same rewrite as on a server (src/runtime/prepare), compiled, and kept
// in memory for as long as the worker lives, so that running a program again
// or restoring one of its snapshots needs no new preparation.

import { PreparedModules } from '../host/prepared-modules.ts';
import { prepareModule, type PrepareOptions } from '../runtime/prepare/prepare.ts';
import type { PreparedModule } from '../runtime/prepare/prepared.ts';

/** Lower-case hex SHA-256 (WebCrypto: needs a secure context, such as http://127.0.0.1 or https). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class BrowserModules extends PreparedModules {
  protected digest(bytes: Uint8Array): Promise<string> {
    return sha256Hex(bytes);
  }

  protected load(_hash: string, bytes: Uint8Array, options: PrepareOptions): Promise<PreparedModule> {
    return prepareModule(bytes, options);
  }
}
