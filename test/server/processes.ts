// gate-server as a separate process (bin/gate-server.js), for tests that
// stop it with a signal: SIGTERM to close it, SIGKILL to crash it.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { root } from '../helpers.ts';
import { Client, testCacheDir, type Principal } from './helpers.ts';

export interface Proc {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

export function startProcess(dataDir: string, ...options: string[]): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'bin/gate-server.js'),
      ...['-F', '/dev/null', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '-o', `runtime.cachedir=${testCacheDir}`, '-o', 'log.level=warn'],
      ...options,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)\n/.exec(out);
      if (m) resolve({ child, url: m[1], exited });
    });
    void exited.then((code) => reject(new Error(`gate-server exited (${code}): ${stderr}`)));
  });
}

/** A client of a server process, as `principal`. */
export function client(url: string, principal: Principal): Client {
  return new Client({ url, audience: `${url}/gate-0/` }, principal);
}
