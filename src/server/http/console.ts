// The web console at /console/: its page and stylesheet (src/console/), and
// two scripts bundled by esbuild from the TypeScript sources on the first
// request and then kept in memory: console.js (the page, src/console/main.ts)
// and worker.js (the browser host that runs programs, src/browser/worker.ts).
// Building on demand keeps `npm install` free of build steps, the bundle never
// stale against the sources, and the server's start-up free of esbuild.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { HttpError } from '../api/errors.ts';

export const CONSOLE_ROOT = '/console/';

const srcDir = fileURLToPath(new URL('../..', import.meta.url));

interface Asset {
  type: string;
  body: Uint8Array;
  etag: string;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  map: 'application/json; charset=utf-8',
};

/** The page may load its own scripts and compile WebAssembly, and talk to this server only. */
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function asset(name: string, body: Uint8Array): Asset {
  const ext = name.slice(name.lastIndexOf('.') + 1);
  return { type: TYPES[ext] ?? 'application/octet-stream', body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

let assets: Promise<Map<string, Asset>> | undefined;

async function build(): Promise<Map<string, Asset>> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: srcDir,
    entryPoints: { console: 'console/main.ts', worker: 'browser/worker.ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    sourcesContent: true,
    legalComments: 'none',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  const out = new Map<string, Asset>();
  for (const file of result.outputFiles) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    out.set(name, asset(name, file.contents));
  }
  for (const name of ['index.html', 'console.css']) {
    out.set(name, asset(name, new Uint8Array(await readFile(`${srcDir}console/${name}`))));
  }
  return out;
}

/** The console's files, built once per process; a failed build is tried again at the next request. */
export function consoleAssets(): Promise<Map<string, Asset>> {
  if (!assets) {
    assets = build();
    assets.catch(() => (assets = undefined));
  }
  return assets;
}

/** Whether a clean path belongs to the console (`/console` redirects to `/console/`). */
export function isConsolePath(path: string): boolean {
  return path === '/console' || path.startsWith(CONSOLE_ROOT);
}

export async function serveConsole(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (path === '/console') {
    res.writeHead(301, { Location: CONSOLE_ROOT, 'Content-Length': 0 });
    res.end();
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
  }
  const name = path === CONSOLE_ROOT ? 'index.html' : path.slice(CONSOLE_ROOT.length);
  let files: Map<string, Asset>;
  try {
    files = await consoleAssets();
  } catch (error) {
    throw new HttpError(500, `console could not be built: ${(error as Error).message.split('\n')[0]}`);
  }
  const file = files.get(name);
  if (!file) throw new HttpError(404, '404 page not found');
  const headers = {
    'Content-Type': file.type,
    'Cache-Control': 'no-cache',
    ETag: file.etag,
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
  };
  if (req.headers['if-none-match'] === file.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': file.body.byteLength });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}
