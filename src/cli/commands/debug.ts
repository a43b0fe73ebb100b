// `debug ID [COMMAND]`: the instance's module, status and breakpoints, and
// `dumptext` (the module's code as WebAssembly text). Breakpoints and the
// suspended call stack (break, delete, detach, bt) are not supported yet:
// those commands say so and exit 1 without a request.

import { CliError } from '../errors.ts';
import { INSTANCE_PATH, MODULE_PATH, readAll } from '../http-client.ts';
import { moduleIdArg } from '../module-arg.ts';
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

/** Gate's debug commands that this version cannot do yet, and why. */
const NOT_YET: Record<string, string> = {
  break: 'breakpoints cannot be set',
  delete: 'breakpoints cannot be set, so there are none to delete',
  detach: 'breakpoints cannot be set, so there are none to remove',
  bt: "a suspended program's call stack cannot be read",
  backtrace: "a suspended program's call stack cannot be read",
};

export async function debugCommand(s: Session, id: string, command: string | undefined, rest: readonly string[]): Promise<void> {
  if (command !== undefined && command in NOT_YET) throw new CliError(`debug ${command} is not supported yet: ${NOT_YET[command]} in this version`);
  if (command !== undefined && command !== 'dumptext') throw new CliError(`unknown debug command: ${command} (dumptext; break, delete, detach and bt are not supported yet)`, 2);
  if (rest.length > 0) throw new CliError(`debug ${command ?? ''} takes no arguments`.replace('  ', ' '), 2);
  const response = await s.client.json<DebugResponse>({
    method: 'POST',
    path: INSTANCE_PATH + instanceArg(id),
    query: [['action', 'debug']],
    headers: { 'Content-Type': 'application/json' },
    body: Buffer.from(JSON.stringify({ op: 'CONFIG_GET' })),
  });
  const module = (response.module ?? '').replace(/^sha256\//, '');
  if (command === 'dumptext') {
    process.stdout.write(await moduleText(s, module));
    return;
  }
  if (s.json) {
    printJSON(response);
    return;
  }
  const breakpoints = (response.config?.breakpoints ?? []).map((b) => `0x${BigInt(b).toString(16)}`);
  process.stdout.write(`Module:         ${module}\n`);
  process.stdout.write(`Status:         ${statusText(response.status ?? {})}\n`);
  process.stdout.write(`Breakpoints:    ${breakpoints.join(' ')}\n`.replace(/ +\n$/, '\n'));
}

/** The instance's module (downloaded from the same place) as WebAssembly text, by Binaryen. */
async function moduleText(s: Session, module: string): Promise<string> {
  const res = await s.client.request({ method: 'GET', path: MODULE_PATH + moduleIdArg(module) });
  const bytes = new Uint8Array(await readAll(res));
  // Binaryen is a development dependency (it prints WebAssembly text); the runtime does not use it.
  let binaryen: typeof import('binaryen').default;
  try {
    binaryen = (await import('binaryen')).default;
  } catch {
    throw new CliError('debug dumptext needs the package binaryen, a development dependency: run npm install in the gate-ts checkout');
  }
  let wasm: ReturnType<typeof binaryen.readBinary> | undefined;
  try {
    wasm = binaryen.readBinary(bytes);
    wasm.setFeatures(binaryen.Features.All);
    return wasm.emitText();
  } catch (error) {
    throw new CliError(`module ${module}: cannot disassemble: ${(error as Error).message}`);
  } finally {
    wasm?.dispose();
  }
}
