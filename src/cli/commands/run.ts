// `call` and `launch` through the daemon or a server. A file is hashed here;
// call pins it first (when `pin` is on) so that standard input can stream
// into a call of the known module; launch uploads it with the request. A
// snapshot file launched this way resumes where it was suspended.

import { rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { CliError } from '../errors.ts';
import { INSTANCE_PATH, MODULE_PATH, readAll } from '../http-client.ts';
import { resolveModuleArg, type ModuleArg } from '../module-arg.ts';
import { copyOutput, printJSON } from '../output.ts';
import type { Session } from '../session.ts';
import { exitCodeOf, parseStatus, reportCallEnd, statusText } from '../status.ts';
// Uploads (transfer.ts, with its progress bar) load only when a module goes up: a call of a pinned module needs neither.
const transfer = () => import('../transfer.ts');

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
  // A file is called by its id once the server has it pinned (so standard input can stream in),
  // unless there is no pinning: then the module goes with the call and the program sees end of input.
  const withInput = m.kind !== 'file' || (s.config.pin && !s.anonymous);
  if (m.kind === 'source') query.push(...pinQuery(s));

  let input: PassThrough | undefined;
  const uploadBody = m.kind === 'file' && !withInput ? (await transfer()).uploadBody : undefined;
  const send = () => {
    input = withInput ? new PassThrough() : undefined;
    return s.client.request({
      method: 'POST',
      path: modulePath(m),
      query,
      trailers: true,
      auth: !s.anonymous,
      headers: m.kind === 'file' && !withInput ? { 'Content-Type': 'application/wasm' } : {},
      body: m.kind === 'file' && uploadBody ? uploadBody(m.bytes, 'upload') : input,
    });
  };
  let res: IncomingMessage;
  try {
    res = await send();
  } catch (error) {
    // The call is tried first (one round trip when the module is known); upload and pin it when not.
    if (!(m.kind === 'file' && withInput && error instanceof CliError && error.message === 'module not found')) throw error;
    input?.destroy();
    await (await transfer()).uploadModule(s.client, m.id, m.bytes, s.config.moduletags);
    res = await send();
  }
  if (input) process.stdin.pipe(input);
  const instance = headerValue(res, 'gate-instance');
  const stopSuspendKey = instance ? suspendOnQuit(s, instance) : () => {};
  const { logFile, follower } = options.debug && s.local && instance ? await followDebugLog(instance) : {};
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

/**
 * `call -p` (Gate's persistent local call): launch an instance that stays
 * after it stops, join standard input and output to it, and wait for it.
 * The end is reported as `<instance> <status>` on stderr. With backtrace
 * (-D), an instance that did not finish would get its call stack printed,
 * which this version cannot read yet; it says so.
 */
export async function callPersistent(s: Session, moduleArg: string, fn: string | undefined, options: RunOptions & { backtrace?: boolean }): Promise<number> {
  const m = await resolveModuleArg(moduleArg);
  if (m.kind === 'file') {
    const { hasModule, uploadModule } = await transfer();
    if (!(await hasModule(s.client, m.id))) await uploadModule(s.client, m.id, m.bytes, s.config.moduletags);
  }
  const query: Query = [['action', 'launch'], ...entryQuery(s, fn, options.debug, [])];
  if (m.kind === 'source') query.push(...pinQuery(s));
  const launched = await s.client.request({ method: 'POST', path: modulePath(m), query });
  await readAll(launched);
  const instance = headerValue(launched, 'gate-instance');
  if (!instance) throw new CliError('server did not name the new instance (no Gate-Instance)');
  const stopSuspendKey = suspendOnQuit(s, instance);
  const { follower } = options.debug && s.local ? await followDebugLog(instance) : {};
  let status;
  try {
    const { ioCommand } = await import('./io.ts');
    await ioCommand(s, instance).catch((error: unknown) => {
      // A program that ends (or suspends) without accepting a connection has no io to join.
      if (!(error instanceof CliError && error.message.includes('is not running'))) throw error;
    });
    const waited = await s.client.request({ method: 'POST', path: INSTANCE_PATH + instance, query: [['action', 'wait']] });
    await readAll(waited);
    status = parseStatus(headerValue(waited, 'gate-status'));
  } finally {
    stopSuspendKey();
    follower?.stop();
  }
  const code = exitCodeOf(status);
  if (s.json) printJSON({ instance, status });
  else process.stderr.write(`${instance} ${statusText(status)}\n`);
  if (options.backtrace && status.state !== 'HALTED' && status.state !== 'TERMINATED') {
    process.stderr.write("gate: no call stack: reading a program's call stack (debug bt) is not supported yet\n");
  }
  return code;
}

/**
 * The daemon writes each instance's debug log to a file (the API has no
 * channel for it); this copies what it writes to stderr while the call runs.
 */
async function followDebugLog(instance: string) {
  const [{ debugLogFile }, { daemonPaths }, { followFile }] = await Promise.all([
    import('../../daemon/debug-logs.ts'),
    import('../../daemon/paths.ts'),
    import('../debug-follow.ts'),
  ]);
  const logFile = debugLogFile(daemonPaths().runtimeDir, instance);
  return { logFile, follower: followFile(logFile, (chunk) => process.stderr.write(chunk)) };
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
  const { uploadBody } = await transfer();
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
