// `gate call`: which of the three ways a call goes (through the daemon or a
// server, persistent through the daemon, or in this process), shared by the
// command line parser and by main.ts's path for a call without options
// (plainCall there).

import { CliError } from '../errors.ts';
import { openSession, type Globals } from '../session.ts';

/** The options of `call` (program.ts declares them for the parser). */
export interface CallCommandOptions {
  function?: string;
  scope?: string[];
  debug?: boolean;
  persist?: boolean;
  D?: boolean;
  inProcess?: boolean;
  fuel?: number;
  timeLimit?: number;
  cpuLimit?: number;
  memoryLimit?: number;
}

/** Runs the call; its exit status is the program's result. */
export async function callAction(address: string | undefined, globals: Globals, module: string, fn: string | undefined, o: CallCommandOptions): Promise<number> {
  const local = o.inProcess || [o.fuel, o.timeLimit, o.cpuLimit, o.memoryLimit].some((v) => v !== undefined);
  if (local && address) throw new CliError('--in-process, --fuel, --time-limit, --cpu-limit and --memory-limit are for local calls only', 2);
  if ((o.persist || o.D) && (local || address)) throw new CliError('-p and -D are for calls through the local daemon only', 2);
  if (local) {
    // The runtime loads only for in-process calls: other commands start faster without it.
    const { callCommand } = await import('../call.ts');
    return callCommand(module, fn, { ...o, json: globals.json });
  }
  const [session, run] = await Promise.all([openSession(address, globals, o.scope), import('./run.ts')]);
  if (o.persist || o.D) return run.callPersistent(session, module, fn ?? o.function, { debug: o.debug || o.D, backtrace: o.D });
  return run.callRemote(session, module, fn ?? o.function, { debug: o.debug });
}
