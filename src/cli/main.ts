// The `gate` command line. Commands live in their own files; this one parses
// arguments, maps errors to one line on stderr and sets the exit status
// (0 success, 1 failure, 2 usage, or the program's result for `call`).

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { callCommand } from './call.ts';
import { CliError } from './errors.ts';
import { VERSION } from './version.ts';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function buildProgram(): Command {
  const program = new Command('gate')
    .description('Run WebAssembly programs safely: locally, or on a Gate server.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run "gate --help" for usage)')
    .exitOverride();

  program
    .command('call')
    .description('run a wasm module in this process, with standard input and output joined to it')
    .argument('<module>', 'wasm file')
    .argument('[function]', 'entry function (default: _start if exported, else none)')
    .option('-f, --function <name>', 'entry function')
    .option('-d, --debug', "write the program's debug log to standard error")
    .option('--fuel <units>', 'stop the program after this much fuel (about one unit per instruction)', positiveNumber)
    .option('--time-limit <seconds>', 'stop the program after it has run this long', positiveNumber)
    .option('--memory-limit <MiB>', 'largest memory the program may have (default 32)', positiveNumber)
    .action(async (module: string, fn: string | undefined, options) => {
      process.exitCode = await callCommand(module, fn, options);
    });

  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors 2 (commander has printed the message).
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`gate: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`gate: internal error: ${(error as Error).stack ?? error}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
// Standard input may still hold the event loop open; the command is done.
process.stdout.write('', () => process.exit());
