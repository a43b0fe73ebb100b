// The `gate` command line: `gate [options] [ADDRESS] COMMAND [arguments]`.
// Without an address it talks to the local daemon (started on demand); with
// one (example.net, https://host, http://localhost:6473) to that server.
// This file separates the global options and the address, then lets
// commander parse the command. Exit status: 0 success, 1 failure, 2 usage,
// or the program's result for `call`.

import { isAddress } from './address.ts';
import type { ConfigStep } from './config.ts';
import { CliError } from './errors.ts';
import type { Globals } from './session.ts';
import { VERSION } from './version.ts';

const GLOBAL_USAGE = `Usage: gate [options] [ADDRESS] COMMAND [arguments]

Without ADDRESS, commands go to the local gate daemon (started on demand).
ADDRESS is a server: example.net, https://host, http://localhost:6473.

Global options (before ADDRESS):
  -o KEY=VALUE   set a client configuration key (may repeat)
  -f FILE        read a configuration file too; -F FILE: only this one
  -d DIR         read DIR/*.toml
  --json         print results as JSON
  --no-color     no colours, even on a terminal
  -V, --version  print the version
  -h, --help     this help; "gate help COMMAND" for a command's

Configuration: ~/.config/gate/client.toml and client.d/*.toml (docs/cli.md).
`;

interface Parsed {
  steps: ConfigStep[];
  json: boolean;
  address?: string;
  rest: string[];
  help: boolean;
  version: boolean;
}

/** Global options, then an optional address, then the command and its arguments. */
function parseGlobals(argv: string[]): Parsed {
  const out: Parsed = { steps: [], json: false, rest: [], help: false, version: false };
  let i = 0;
  const value = (flag: string) => {
    const v = argv[++i];
    if (v === undefined) throw new CliError(`option ${flag} needs an argument`, 2);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a === '-o') out.steps.push({ kind: 'option', arg: value(a) });
    else if (a === '-f') out.steps.push({ kind: 'file', arg: value(a) });
    else if (a === '-F') out.steps.push({ kind: 'reset', arg: value(a) });
    else if (a === '-d') out.steps.push({ kind: 'dir', arg: value(a) });
    else if (a === '--json') out.json = true;
    else if (a === '--no-color' || a === '--no-colour') process.env.NO_COLOR = '1';
    else if (a === '-h' || a === '--help') out.help = true;
    else if (a === '-V' || a === '--version') out.version = true;
    else throw new CliError(`unknown option: ${a} (run "gate --help" for usage)`, 2);
  }
  if (i < argv.length && isAddress(argv[i])) out.address = argv[i++];
  out.rest = argv.slice(i);
  return out;
}

/**
 * `call MODULE [FUNCTION]` with nothing else, the commonest command: its
 * module and function, or undefined for anything the parser must see.
 */
function plainCall(args: readonly string[]): { module: string; fn?: string } | undefined {
  if (args[0] !== 'call' || args.length < 2 || args.length > 3) return undefined;
  if (args.slice(1).some((a) => a.startsWith('-'))) return undefined;
  return { module: args[1], fn: args[2] };
}

async function main(argv: string[]): Promise<void> {
  try {
    const parsed = parseGlobals(argv);
    if (parsed.version) {
      process.stdout.write(`${VERSION}\n`);
      return;
    }
    // The rest loads only now: `gate --version` starts without it.
    const plain = plainCall(parsed.rest);
    if (plain) {
      // Without options a call needs no parser: commander and what it loads
      // (child_process, util) are a fifth of a warm-daemon call's time.
      const [{ loadClientConfig }, { callAction }] = await Promise.all([import('./config.ts'), import('./commands/call.ts')]);
      const globals: Globals = { config: loadClientConfig(parsed.steps), json: parsed.json };
      process.exitCode = await callAction(parsed.address, globals, plain.module, plain.fn, {});
      return;
    }
    const [{ loadClientConfig }, { buildProgram }] = await Promise.all([import('./config.ts'), import('./program.ts')]);
    if (parsed.help || parsed.rest.length === 0) {
      const globals: Globals = { config: loadClientConfig([]), json: false };
      const help = buildProgram(parsed, globals).helpInformation();
      process.stdout.write(`${GLOBAL_USAGE}\n${help.slice(help.indexOf('Commands:'))}`);
      if (!parsed.help) process.exitCode = 2;
      return;
    }
    const globals: Globals = { config: loadClientConfig(parsed.steps), json: parsed.json };
    await buildProgram(parsed, globals).parseAsync(parsed.rest, { from: 'user' });
  } catch (error) {
    if ((error as Error)?.name === 'CommanderError') {
      // Help exits 0; usage errors 2 (commander has printed the message).
      process.exitCode = (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`gate: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    // One line, unless GATE_TRACE asks for the stack.
    const detail = process.env.GATE_TRACE ? ((error as Error).stack ?? String(error)) : ((error as Error).message ?? String(error));
    process.stderr.write(`gate: internal error: ${detail}\n`);
    process.exitCode = 1;
  }
}

// A closed pipe on standard output (gate ... | head) ends the command quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

await main(process.argv.slice(2));
// Standard input may still hold the event loop open; the command is done.
process.stdout.write('', () => process.exit());
