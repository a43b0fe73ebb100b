// What a module argument names (cli.md §2.4): a known module by its hex
// SHA-256, a source path such as /ipfs/CID, or a local wasm file (a program
// or a snapshot) that the client reads and hashes itself.

import { readFileSync } from 'node:fs';
import { CliError } from './errors.ts';
import { sha256Hex } from './sha256.ts';

export type ModuleArg =
  | { kind: 'id'; id: string }
  | { kind: 'source'; path: string }
  | { kind: 'file'; file: string; bytes: Uint8Array; id: string };

const HEX_ID = /^[0-9a-f]{64}$/;
const SOURCE = /^\/ipfs\/[^/]/;

export async function resolveModuleArg(arg: string): Promise<ModuleArg> {
  if (HEX_ID.test(arg)) return { kind: 'id', id: arg };
  if (SOURCE.test(arg)) return { kind: 'source', path: arg.slice(1) };
  const bytes = await readModuleFile(arg);
  return { kind: 'file', file: arg, bytes, id: sha256Hex(bytes) };
}

/** A module id argument (no files): for show, unpin, export. */
export function moduleIdArg(arg: string): string {
  if (HEX_ID.test(arg)) return arg;
  throw new CliError(`not a module id (64 lower-case hex digits): ${arg}`);
}

/** A local wasm file; an empty one is refused here, naming the file. */
export async function readModuleFile(file: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    // Read at once: node:fs/promises would bring readline with it (a few ms of every call's start).
    bytes = new Uint8Array(readFileSync(file));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      if (!file.includes('/') && !file.includes('.')) throw new CliError(`${file}: no such file, and not a module id`);
      throw new CliError(`${file}: no such file`);
    }
    if (e.code === 'EISDIR') throw new CliError(`${file}: is a directory`);
    if (e.code === 'EACCES') throw new CliError(`${file}: permission denied`);
    throw new CliError(`${file}: ${e.message}`);
  }
  if (bytes.byteLength === 0) throw new CliError(`${file}: the file is empty: not a WebAssembly module`);
  return bytes;
}

/** The module id at the end of a Location path (/gate-0/module/sha256/<hex>). */
export function idFromLocation(location: string | undefined): string {
  const id = location?.split('/').pop();
  if (!id) throw new CliError('server did not say where the module is (no Location)');
  return id;
}
