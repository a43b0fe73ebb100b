// Module sources: a module named by URI instead of uploaded (server.md §6).
// HTTP sources fetch `<addr>/<name>/<rest>`; the IPFS source asks an IPFS
// HTTP API server. Both are off unless configured.

import { HttpError, moduleNotFound } from './errors.ts';

export interface Source {
  /** Name without slash: the URL segment after /gate-0/module/. */
  readonly name: string;
  /** Fetch the object; rejects with 404/400/500 HttpErrors. */
  fetch(rest: string, maxSize: number): Promise<Uint8Array>;
}

const tooLarge = () => new HttpError(400, 'program size limit exceeded');
const internal = () => new HttpError(500, 'internal error');

export class HttpSource implements Source {
  readonly name: string;
  private readonly addr: string;

  constructor(name: string, addr: string) {
    this.name = name;
    this.addr = addr.replace(/\/+$/, '');
  }

  async fetch(rest: string, maxSize: number): Promise<Uint8Array> {
    if (rest === '' || !/^[\x20-\x7e]+$/.test(rest)) throw internal();
    let res: Response;
    try {
      res = await fetch(`${this.addr}/${this.name}/${rest}`, { headers: { Range: `bytes=0-${maxSize - 1}` }, redirect: 'follow' });
    } catch {
      throw internal();
    }
    if (res.status === 404) throw moduleNotFound();
    if (res.status === 200) {
      const length = res.headers.get('content-length');
      if (length === null) throw internal();
      if (Number(length) > maxSize) throw tooLarge();
    } else if (res.status === 206) {
      const m = /^bytes 0-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) + 1 !== Number(m[2]) || Number(m[2]) > maxSize) throw tooLarge();
    } else {
      throw internal();
    }
    return readLimited(res, maxSize);
  }
}

export class IpfsSource implements Source {
  readonly name = 'ipfs';
  private readonly addr: string;

  constructor(addr: string) {
    this.addr = addr.replace(/\/+$/, '');
  }

  async fetch(rest: string, maxSize: number): Promise<Uint8Array> {
    if (!/^[0-9A-Za-z]+$/.test(rest)) throw internal();
    let res: Response;
    try {
      res = await fetch(`${this.addr}/api/v0/cat?arg=/ipfs/${rest}&length=${maxSize + 1}`, { method: 'POST' });
    } catch {
      throw internal();
    }
    if (res.status === 404) throw moduleNotFound();
    if (res.status !== 200) throw internal();
    const length = res.headers.get('x-content-length');
    if (length === null || !/^\d+$/.test(length)) throw internal();
    if (Number(length) > maxSize) throw tooLarge();
    return readLimited(res, maxSize);
  }
}

async function readLimited(res: Response, maxSize: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxSize) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw internal();
  }
  return new Uint8Array(Buffer.concat(chunks));
}
