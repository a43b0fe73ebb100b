// `call` and `launch` through the daemon or a server. A file is hashed here;
// call pins it first (when `pin` is on) so that standard input can stream
// into a call of the known module; launch uploads it with the request. A
// snapshot file launched this way resumes where it was suspended.

import { rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { debugLogFile } from '../../daemon/debug-logs.ts';
import { daemonPaths } from '../../daemon/paths.ts';
import { followFile } from '../debug-follow.ts';
import { PassThrough } from 'node:stream';
import { CliError } from '../errors.ts';
import { INSTANCE_PATH, MODULE_PATH, readAll } from '../http-client.ts';
import { resolveModuleArg, type ModuleArg } from '../module-arg.ts';
import { printJSON } from '../output.ts';
import type { Session } from '../session.ts';
import { parseStatus, reportCallEnd } from '../status.ts';
import { hasModule, uploadBody, uploadModule } from '../transfer.ts';

type Query = Array<[string, string]>;

export interface RunOptions {
  function?: string;
  debug?: boolean;
}

export interface LaunchOptions extends RunOptions {
  suspend?: boolean;
  instance?: string;
}

function entryQuery(s: Session, fn: string | undefined, debug: boolean | undefined, tags: readonly string[]): Query {
  const q: Query = [];
  const name = fn ?? (s.config.function || undefined);
  if (name) q.push(['function', name]);
  for (const t of [...s.config.instancetags, ...tags]) q.push(['instance-tag', t]);
  if (debug || s.config.debuglog) q.push(['log', '*']);
  return q;
}

function pinQuery(s: Session): Query {
  return s.config.pin && !s.anonymous ? [['action', 'pin'], ...s.config.moduletags.map((t): [string, string] => ['module-tag', t])] : [];
}

function modulePath(m: ModuleArg): string {
  return m.kind === 'source' ? `module/${m.path}` : MODULE_PATH + m.id;
}

/** `call MODULE [FUNCTION]`: returns the exit status. */
export async function callRemote(s: Session, moduleArg: string, fn: string | undefined, options: RunOptions): Promise<number> {
  const m = await resolveModuleArg(moduleArg);
  if (options.debug && !s.local) process.stderr.write('gate: note: servers do not send debug logs; --debug shows them for local calls\n');
  const query: Query = [['action', 'call'], ...entryQuery(s, fn, options.debug, [])];
  let withInput = true;
  if (m.kind === 'file') {
    if (s.config.pin && !s.anonymous) {
      if (!(await hasModule(s.client, m.id))) await uploadModule(s.client, m.id, m.bytes, s.config.moduletags);
    } else {
      withInput = false; // upload+call: the body is the module, the program sees end of input
    }
  } else if (m.kind === 'source') {
    query.push(...pinQuery(s));
  }

  const input = withInput ? new PassThrough() : undefined;
  const res = await s.client.request({
    method: 'POST',
    path: modulePath(m),
    query,
    trailers: true,
    auth: !s.anonymous,
    headers: m.kind === 'file' && !withInput ? { 'Content-Type': 'application/wasm' } : {},
    body: m.kind === 'file' && !withInput ? uploadBody(m.bytes, 'upload') : input,
  });
  if (input) process.stdin.pipe(input);
  const instance = headerValue(res, 'gate-instance');
  const stopSuspendKey = instance ? suspendOnQuit(s, instance) : () => {};
  // The daemon writes debug logs to files (the API has no channel for them).
  const logFile = options.debug && s.local && instance ? debugLogFile(daemonPaths().runtimeDir, instance) : undefined;
  const follower = logFile ? followFile(logFile, (chunk) => process.stderr.write(chunk)) : undefined;
  try {
    await copyOutput(res, s.client.name);
  } finally {
    stopSuspendKey();
    follower?.stop();
    if (input) {
      process.stdin.unpipe(input);
      input.destroy();
    }
  }
  const status = parseStatus(res.trailers['gate-status']);
  if (logFile && status.state !== 'SUSPENDED') rmSync(logFile, { force: true });
  return reportCallEnd(s.json, instance, status);
}

/** Ctrl-\ (SIGQUIT) while a call runs suspends it, as in Gate. */
function suspendOnQuit(s: Session, instance: string): () => void {
  const onQuit = () => {
    if (process.stderr.isTTY) process.stderr.write('\n');
    s.client.empty({ method: 'POST', path: INSTANCE_PATH + instance, query: [['action', 'suspend']] }).catch((error: unknown) => {
      process.stderr.write(`gate: suspend: ${(error as Error).message}\n`);
    });
  };
  process.on('SIGQUIT', onQuit);
  return () => process.off('SIGQUIT', onQuit);
}

/** Program output to stdout, as it comes; a dropped connection is an error that names the server. */
export async function copyOutput(res: IncomingMessage, name: string): Promise<void> {
  try {
    for await (const chunk of res) {
      if (!process.stdout.write(chunk as Buffer)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  } catch {
    throw new CliError(`${name} closed the connection before the program's output ended`);
  }
}

function headerValue(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `launch MODULE [FUNCTION [INSTANCETAG...]]`: prints the new instance id. */
export async function launchRemote(s: Session, moduleArg: string, fn: string | undefined, tags: readonly string[], options: LaunchOptions): Promise<string> {
  const m = await resolveModuleArg(moduleArg);
  const query: Query = [['action', 'launch'], ...entryQuery(s, fn, options.debug, tags)];
  if (options.suspend ?? s.config.suspend) query.push(['action', 'suspend']);
  const id = options.instance ?? (s.config.instance || undefined);
  if (id) query.push(['instance', id]);
  if (m.kind !== 'id') query.push(...pinQuery(s));
  const res = await s.client.request({
    method: 'POST',
    path: modulePath(m),
    query,
    headers: m.kind === 'file' ? { 'Content-Type': 'application/wasm', 'Content-Length': String(m.bytes.byteLength) } : {},
    body: m.kind === 'file' ? uploadBody(m.bytes, 'upload') : undefined,
  });
  await readAll(res);
  const instance = headerValue(res, 'gate-instance');
  if (!instance) throw new CliError('server did not name the new instance (no Gate-Instance)');
  if (s.json) printJSON({ instance, module: m.kind === 'source' ? undefined : m.id });
  else process.stdout.write(`${instance}\n`);
  return instance;
}
