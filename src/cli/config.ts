// Client configuration: ${XDG_CONFIG_HOME}/gate/client.toml and
// client.d/*.toml, then -f/-F/-d files and -o key=value options, read by the
// loader gate-server and gate-daemon use (src/server/config/config-loader.ts).
// Gate's keys keep their meaning; `nonce` is ours (docs/cli.md).

import os from 'node:os';
import path from 'node:path';
import { ConfigError, configHome, key, loadConfig, type ConfigOf, type Step } from '../server/config/config-loader.ts';
import { CliError } from './errors.ts';

export const CLIENT_KEYS = {
  identityfile: key.string(() => path.join(os.homedir(), '.ssh', 'id_ed25519'), 'OpenSSH Ed25519 private key; "" sends no credentials'),
  pin: key.bool(true, 'call/launch of a file or source path pins the module (anonymous calls never pin)'),
  moduletags: key.strings([], 'tags for modules pinned by call, launch, pin, import, snapshot, pull'),
  wait: key.bool(true, 'kill and suspend wait for the instance to stop and print its status'),
  function: key.string('', 'default entry function'),
  instance: key.string('', 'instance id for launch'),
  instancetags: key.strings([], 'tags for instances made by call, launch, update'),
  scope: key.strings([], "scope tokens (the token's scope claim); -s adds more"),
  suspend: key.bool(false, 'launch creates the instance suspended'),
  debuglog: key.string('', 'non-empty: ask for the debug log (log=*)'),
  nonce: key.bool(true, 'put a random single-use nonce in each signed token'),
  'repl.historyfile': key.string('', 'repl keeps its input history in this file'),
  'repl.historylimit': key.int(500, 'history lines kept'),
};

export type ClientConfig = ConfigOf<typeof CLIENT_KEYS>;
export type ConfigStep = Step;

/** Default files, then the steps from the command line, in order; errors are usage errors (exit 2). */
export function loadClientConfig(steps: readonly ConfigStep[]): ClientConfig {
  const dir = path.join(configHome(), 'gate');
  try {
    return loadConfig(CLIENT_KEYS, steps, { defaultFiles: [path.join(dir, 'client.toml'), path.join(dir, 'client.d', '*.toml')] });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
}
