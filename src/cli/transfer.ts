// Moving module bytes: uploads (PUT with pin) and downloads (GET, exact
// Content-Length), with a progress bar for big ones.

import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError } from './errors.ts';
import { MODULE_PATH, type GateClient } from './http-client.ts';
import { Progress } from './progress.ts';


/**
 * The module bytes as a request body: a stream that draws progress when a bar
 * would show, else the bytes themselves, which go out in one write with the
 * request head (a server may answer, and close, before reading a body).
 */
export function uploadBody(bytes: Uint8Array, label: string): Uint8Array | Readable {
  if (!Progress.shows(bytes.byteLength)) return bytes;
  const source = Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
  return source.pipe(new Progress(label, bytes.byteLength));
}

/** PUT …/sha256/<id>?action=pin: upload and pin, with optional tags. */
export async function uploadModule(client: GateClient, id: string, bytes: Uint8Array, tags: readonly string[]): Promise<void> {
  await client.empty({
    method: 'PUT',
    path: MODULE_PATH + id,
    query: [['action', 'pin'], ...tags.map((t): [string, string] => ['module-tag', t])],
    headers: { 'Content-Type': 'application/wasm', 'Content-Length': String(bytes.byteLength) },
    body: uploadBody(bytes, 'upload'),
  });
}

/** Whether the caller already has the module pinned there. */
export async function hasModule(client: GateClient, id: string): Promise<boolean> {
  try {
    await client.json({ method: 'POST', path: MODULE_PATH + id });
    return true;
  } catch (error) {
    if (error instanceof CliError && error.message === 'module not found') return false;
    throw error;
  }
}

/** GET …/sha256/<id>: all the bytes, checked against Content-Length. */
export async function downloadModule(client: GateClient, id: string): Promise<Uint8Array> {
  const res = await client.request({ method: 'GET', path: MODULE_PATH + id, headers: { Accept: 'application/wasm, text/plain' } });
  const length = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(length)) {
    res.resume();
    throw new CliError('server did not specify content length');
  }
  const chunks: Buffer[] = [];
  const progress = new Progress('download', length);
  await pipeline(res, progress, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== length) throw new CliError('unexpected EOF');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Write to stdout ('-' or no name), or atomically into a file (temporary name, then rename). */
export async function writeOutput(bytes: Uint8Array, file: string | undefined): Promise<void> {
  if (file === undefined || file === '-') {
    await writeAll(process.stdout, bytes);
    return;
  }
  // node:fs/promises loads only here: it brings readline with it (a few ms of every command's start).
  const { rename, stat, unlink } = await import('node:fs/promises');
  let regular = true;
  try {
    regular = (await stat(file)).isFile();
  } catch {
    // new file
  }
  if (!regular) {
    await writeAll(createWriteStream(file), bytes, true);
    return;
  }
  const temp = path.join(path.dirname(file), `.${process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex')}.wasm`);
  try {
    await writeAll(createWriteStream(temp, { mode: 0o644 }), bytes, true);
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
}

function writeAll(stream: Writable, bytes: Uint8Array, end = false): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    if (end) stream.end(bytes, () => resolve());
    else stream.write(bytes, () => resolve());
  });
}
