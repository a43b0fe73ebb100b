// `debug ID [COMMAND [OFFSET...]]`: breakpoints and the suspended call stack
// (api.md §9.6). Offsets are numbers (decimal or 0x...) into the module's code.

import { CliError } from '../errors.ts';
import { INSTANCE_PATH } from '../http-client.ts';
import { printJSON } from '../output.ts';
import type { Session } from '../session.ts';
import { statusText, type ApiStatus } from '../status.ts';
import { instanceArg } from './instance.ts';

interface DebugResponse {
  module?: string;
  status?: ApiStatus;
  config?: { breakpoints?: Array<string | number> };
  data?: string;
}

const OPS: Record<string, string> = {
  '': 'CONFIG_GET',
  break: 'CONFIG_UNION',
  delete: 'CONFIG_COMPLEMENT',
  detach: 'CONFIG_SET',
  bt: 'READ_STACK',
  backtrace: 'READ_STACK',
};

function parseOffset(text: string): string {
  const n = /^0x[0-9a-f]+$/i.test(text) ? BigInt(text) : /^\d+$/.test(text) ? BigInt(text) : undefined;
  if (n === undefined) throw new CliError(`invalid breakpoint offset: ${text} (a number, decimal or 0x...)`, 2);
  return n.toString();
}

export async function debugCommand(s: Session, id: string, command: string | undefined, offsets: readonly string[]): Promise<void> {
  const op = OPS[command ?? ''];
  if (!op) throw new CliError(`unknown debug command: ${command} (use break, delete, detach or bt)`, 2);
  if ((command === 'break' || command === 'delete') && offsets.length === 0) throw new CliError(`debug ${command} needs at least one offset`, 2);
  if (offsets.length > 0 && command !== 'break' && command !== 'delete') throw new CliError(`debug ${command ?? ''} takes no offsets`.replace('  ', ' '), 2);
  const request: Record<string, unknown> = { op };
  if (op !== 'CONFIG_GET' && op !== 'READ_STACK') request.config = { breakpoints: offsets.map(parseOffset) };
  const response = await s.client.json<DebugResponse>({
    method: 'POST',
    path: INSTANCE_PATH + instanceArg(id),
    query: [['action', 'debug']],
    headers: { 'Content-Type': 'application/json' },
    body: Buffer.from(JSON.stringify(request)),
  });
  if (s.json) {
    printJSON(response);
    return;
  }
  if (op === 'READ_STACK') {
    const data = Buffer.from(response.data ?? '', 'base64');
    process.stdout.write('Call stack:\n');
    if (data.length === 0) process.stdout.write('  (empty)\n');
    for (let i = 0; i + 8 <= data.length; i += 8) {
      process.stdout.write(`  #${i / 8}  0x${data.readBigUInt64LE(i).toString(16).padStart(16, '0')}\n`);
    }
    return;
  }
  const breakpoints = (response.config?.breakpoints ?? []).map((b) => `0x${BigInt(b).toString(16)}`);
  process.stdout.write(`Module:         ${(response.module ?? '').replace(/^sha256\//, '')}\n`);
  process.stdout.write(`Status:         ${statusText(response.status ?? {})}\n`);
  process.stdout.write(`Breakpoints:    ${breakpoints.join(' ')}\n`.replace(/ +\n$/, '\n'));
}
