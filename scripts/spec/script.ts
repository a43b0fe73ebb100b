// The spec suite's command scripts, as wast2json writes them (see the
// suite's README): one JSON file per .wast script, binary modules beside it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Value {
  type: string;
  value?: string | string[] | null;
  lane_type?: string;
}

export interface Action {
  type: 'invoke' | 'get';
  module?: string;
  field: string;
  args?: Value[];
}

export interface Command {
  type: string;
  line: number;
  filename?: string;
  name?: string;
  as?: string;
  module_type?: string;
  action?: Action;
  expected?: Value[];
  text?: string;
}

export interface Script {
  /** File name of the script, e.g. "address.json". */
  file: string;
  commands: Command[];
}

export function readScript(dir: string, file: string): Script {
  const { commands } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { commands: Command[] };
  return { file, commands };
}

/** A module file named by a command. */
export function readModule(dir: string, filename: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(dir, filename)));
}
