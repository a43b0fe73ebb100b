// Instance status as the API sends it (JSON with enum names, api.md §10.1),
// its one-line text form (cli.md §2.6) and the exit status it means.

import { CliError } from './errors.ts';
import { printJSON } from './output.ts';

export interface ApiStatus {
  state?: string;
  cause?: string;
  result?: number;
  error?: string;
}

export function parseStatus(text: string | undefined): ApiStatus {
  if (text === undefined || text === '') throw new CliError('server did not send the instance status (Gate-Status)');
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as ApiStatus;
  } catch {
    // below
  }
  throw new CliError(`server sent an unreadable status: ${text}`);
}

export function statusText(s: ApiStatus): string {
  let text: string;
  if (!s.state) text = 'error';
  else if (s.cause && s.cause !== 'NORMAL') text = `${s.state} abnormally: ${s.cause}`;
  else if (s.state === 'HALTED' || s.state === 'TERMINATED') text = `${s.state} with result ${s.result ?? 0}`;
  else text = s.state;
  if (s.error) text = s.state ? `${text}; error: ${s.error}` : `error: ${s.error}`;
  return text;
}

/** The program finished normally: its result; suspended: 0; anything else: 1 (cli.md §2.7, local rule). */
export function exitCodeOf(s: ApiStatus): number {
  const normal = !s.cause || s.cause === 'NORMAL';
  if (!s.error && normal && (s.state === 'HALTED' || s.state === 'TERMINATED')) return (s.result ?? 0) & 0xff;
  if (!s.error && normal && s.state === 'SUSPENDED') return 0;
  return 1;
}

/**
 * How a call ends on the terminal, in-process or not: with --json the
 * instance and status (and extra facts) on stdout; otherwise a suspension is
 * `<instance> SUSPENDED` on stderr, an abnormal end `gate: <status>`. Returns
 * the exit status.
 */
export function reportCallEnd(json: boolean, instance: string | undefined, status: ApiStatus, extra: Record<string, unknown> = {}): number {
  const code = exitCodeOf(status);
  if (json) printJSON({ instance, status, ...extra });
  else if (status.state === 'SUSPENDED' && code === 0) process.stderr.write(`${instance ?? ''} ${statusText(status)}\n`.trimStart());
  else if (code !== 0 && !(status.state === 'TERMINATED' && !status.cause && !status.error)) process.stderr.write(`gate: ${statusText(status)}\n`);
  return code;
}
