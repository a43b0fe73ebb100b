// The commands of `gate` for commander: what each takes and which module
// does it. Command modules load only when their command runs, so that a
// command starts without parsing the others (and the runtime loads only
// for in-process calls).

import { Command, InvalidArgumentError } from 'commander';
import { isAddress } from './address.ts';
import type { CallCommandOptions } from './commands/call.ts';
import { CliError } from './errors.ts';
import type { GateClient } from './http-client.ts';
import { openClient, openSession, type Globals, type Session } from './session.ts';
import { VERSION } from './version.ts';

export interface Target {
  /** The server address before the command, if any. */
  address?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

export function buildProgram(parsed: Target, globals: Globals): Command {
  const address = parsed.address;
  const session = (scope: string[] = []): Promise<Session> => openSession(address, globals, scope);
  const where = address ? `on ${address}` : 'in the local daemon';

  const program = new Command('gate')
    .usage('[options] [ADDRESS] COMMAND [arguments]')
    .description(`Run WebAssembly programs safely. Commands act ${where}.`)
    .addHelpCommand('help [command]', 'show help for a command')
    .configureOutput({ outputError: (text, write) => write(`gate: ${text.replace(/^error: /, '').trimEnd()} (run "gate help" for usage)\n`) })
    .exitOverride();

  program
    .command('call')
    .description('run a wasm module with standard input and output joined to it; exit status is its result')
    .argument('<module>', 'wasm file, module id, or source path (/ipfs/CID)')
    .argument('[function]', 'entry function (default: _start if exported)')
    .option('-f, --function <name>', 'entry function')
    .option('-s, --scope <scope>', 'add scope tokens (comma-separated, may repeat)', collect, [])
    .option('-d, --debug', "show the program's debug log on standard error (local calls only)")
    .option('-p, --persist', 'local only: keep the instance after it stops (launch, io and wait)')
    .option('-D', 'local only: --debug and --persist (and the call stack of an unfinished program, not supported yet)')
    .option('--in-process', 'local only: run in this process instead of the daemon')
    .option('--fuel <units>', 'in-process: stop after this much fuel (about one unit per instruction)', positiveNumber)
    .option('--time-limit <seconds>', 'in-process: kill the program after this much (wall-clock) time', positiveNumber)
    .option('--cpu-limit <seconds>', "in-process: kill the program after it has executed this long (waiting doesn't count)", positiveNumber)
    .option('--memory-limit <MiB>', 'in-process: largest memory the program may have (default 32)', positiveNumber)
    .action(async (module: string, fn: string | undefined, o: CallCommandOptions) => {
      process.exitCode = await (await import('./commands/call.ts')).callAction(address, globals, module, fn, o);
    });

  program
    .command('launch')
    .description('create an instance from a wasm module (or resume a snapshot file) and print its id')
    .argument('<module>', 'wasm or snapshot file, module id, or source path (/ipfs/CID)')
    .argument('[function]', 'entry function')
    .argument('[tags...]', 'instance tags')
    .option('-f, --function <name>', 'entry function')
    .option('-s, --scope <scope>', 'add scope tokens (comma-separated, may repeat)', collect, [])
    .option('--suspend', 'create it suspended')
    .option('--instance <id>', 'use this instance id (a UUID)')
    .option('-d, --debug', 'ask for the debug log')
    .action(async (module: string, fn: string | undefined, tags: string[], o) => {
      await (await import('./commands/run.ts')).launchRemote(await session(o.scope), module, fn ?? o.function, tags, { suspend: o.suspend, instance: o.instance, debug: o.debug });
    });

  program
    .command('io')
    .description("connect standard input and output to a running instance")
    .argument('<instance>')
    .action(async (id: string) => (await import('./commands/io.ts')).ioCommand(await session(), id));

  program
    .command('repl')
    .description('connect to a running instance with a line-oriented prompt')
    .argument('<instance>')
    .action(async (id: string) => (await import('./commands/io.ts')).replCommand(await session(), id));

  for (const [verb, text] of [
    ['wait', 'wait until an instance is suspended, halted, terminated or killed; print its status'],
    ['kill', 'kill a running instance (and wait, unless wait=false)'],
    ['suspend', 'suspend a running instance (and wait, unless wait=false)'],
  ] as const) {
    program
      .command(verb)
      .description(text)
      .argument('<instance>')
      .action(async (id: string) => (await import('./commands/instance.ts')).stopCommand(await session(), id, verb));
  }

  program
    .command('resume')
    .description('resume a suspended instance, or run a function of a halted one')
    .argument('<instance>')
    .argument('[function]', 'entry function (halted instances)')
    .option('-d, --debug', 'ask for the debug log')
    .action(async (id: string, fn: string | undefined, o) => (await import('./commands/instance.ts')).resumeCommand(await session(), id, fn, o.debug));

  program
    .command('snapshot')
    .description('make a wasm module of an instance (suspending it for the moment); print its id')
    .argument('<instance>')
    .argument('[tags...]', 'module tags')
    .option('-O, --output <file>', "also write the snapshot module to this file ('-' for standard output)")
    .action(async (id: string, tags: string[], o) => {
      await (await import('./commands/instance.ts')).snapshotCommand(await session(), id, tags, o.output);
    });

  program
    .command('delete')
    .description('delete a stopped instance')
    .argument('<instance>')
    .action(async (id: string) => (await import('./commands/instance.ts')).deleteCommand(await session(), id));

  program
    .command('update')
    .description("make an instance persistent and replace its tags")
    .argument('<instance>')
    .argument('[tags...]', 'instance tags')
    .action(async (id: string, tags: string[]) => (await import('./commands/instance.ts')).updateCommand(await session(), id, tags));

  program
    .command('status')
    .description("print an instance's status and tags")
    .argument('<instance>')
    .action(async (id: string) => (await import('./commands/instance.ts')).statusCommand(await session(), id));

  program
    .command('instances')
    .description('list instances')
    .action(async () => (await import('./commands/instance.ts')).instancesCommand(await session()));

  program
    .command('modules')
    .description('list pinned modules')
    .action(async () => (await import('./commands/module.ts')).modulesCommand(await session()));

  program
    .command('show')
    .description("print a pinned module's tags")
    .argument('<module>', 'module id')
    .action(async (module: string) => (await import('./commands/module.ts')).showCommand(await session(), module));

  program
    .command('pin')
    .description('pin a module (upload a file, fetch a source path) or replace its tags')
    .argument('<module>', 'module id, file, or source path')
    .argument('[tags...]', 'module tags')
    .action(async (module: string, tags: string[]) => (await import('./commands/module.ts')).pinCommand(await session(), module, tags));

  program
    .command('unpin')
    .description('forget a pinned module')
    .argument('<module>', 'module id')
    .action(async (module: string) => (await import('./commands/module.ts')).unpinCommand(await session(), module));

  program
    .command('import')
    .description('upload and pin a wasm file; print its id')
    .argument('<file>')
    .argument('[tags...]', 'module tags')
    .action(async (file: string, tags: string[]) => (await import('./commands/module.ts')).importCommand(await session(), file, tags));

  program
    .command('export')
    .description('write a pinned module to a file or standard output')
    .argument('<module>', 'module id')
    .argument('[file]', "output file (default: standard output)")
    .action(async (module: string, file: string | undefined) => (await import('./commands/module.ts')).exportCommand(await session(), module, file));

  program
    .command('pull')
    .description('copy a module from another server to this one (default: the local daemon)')
    .argument('<source>', "server address, or 'local'")
    .argument('<module>', 'module id')
    .action(async (source: string, module: string) => {
      const here = await openClient(address, globals.config);
      const there = await otherClient(source, globals);
      await (await import('./commands/module.ts')).copyModule(there, here, module, globals.config.moduletags);
    });

  program
    .command('push')
    .description('copy a module from this server (default: the local daemon) to another')
    .argument('<destination>', "server address, or 'local'")
    .argument('<module>', 'module id')
    .action(async (destination: string, module: string) => {
      const here = await openClient(address, globals.config);
      const there = await otherClient(destination, globals);
      await (await import('./commands/module.ts')).copyModule(here, there, module, []);
    });

  program
    .command('migrate')
    .description("move an instance from server A to server B ('local' is the daemon) under the same id")
    .argument('<instance>')
    .argument('<from>', "server address, or 'local'")
    .argument('<to>', "server address, or 'local'")
    .option('--keep', 'leave the suspended instance and its snapshot on the source')
    .action(async (id: string, from: string, to: string, o) => {
      if (address) throw new CliError('for migrate, give both addresses after the command: gate migrate ID A B', 2);
      await (await import('./commands/migrate.ts')).migrateCommand(globals, id, from, to, o.keep === true);
    });

  program
    .command('debug')
    .description("show an instance's module and status; dumptext: its code as WebAssembly text (break, delete, detach and bt are not supported yet)")
    .argument('<instance>')
    .argument('[command]', 'dumptext')
    .argument('[arguments...]')
    .action(async (id: string, command: string | undefined, rest: string[]) => (await import('./commands/debug.ts')).debugCommand(await session(), id, command, rest));

  program
    .command('version')
    .description('print the client version (and the server identity with an address)')
    .action(async () => {
      process.stdout.write(`Gate client version: ${VERSION} (gate-ts)\nNode.js version: ${process.version}\n`);
      if (address) {
        const client = await openClient(address, globals.config);
        const info = await client.json<{ uuid?: string }>({ method: 'GET', path: '', auth: false });
        process.stdout.write(`Server: ${client.name} uuid ${info.uuid ?? 'unknown'}\n`);
      }
    });

  return program;
}

async function otherClient(arg: string, globals: Globals): Promise<GateClient> {
  if (arg !== 'local' && !isAddress(arg)) throw new CliError(`not a server address: ${arg} (use example.net, https://host, http://host:port, or 'local')`, 2);
  return openClient(arg === 'local' ? undefined : arg, globals.config);
}

