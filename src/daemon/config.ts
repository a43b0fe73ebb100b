// gate-daemon's configuration: gate-server's keys (src/server/config/config.ts),
// read from daemon.toml and daemon.d/*.toml, over defaults of its own for
// one trusted user. `gate call --in-process` reads the same files, so a
// program sees the same services there as in the daemon.

import { parseArgs, serverConfigFiles, type ParsedArgs } from '../server/config/config.ts';
import { daemonPaths } from './paths.ts';

/** Settings that differ from gate-server's: one trusted user, generous limits. */
function daemonDefaults(dataDir: string): Record<string, unknown> {
  return {
    'server.datadir': dataDir,
    'access.policy': 'public',
    'principal.maxmodules': 100_000,
    'principal.maxinstances': 100_000,
    'principal.maxprocs': 1024,
    'principal.maxmodulesize': 2 ** 31 - 1,
    'principal.maxmemorysize': 1024 * 1024 * 1024,
    'principal.totalmemorysize': 16 * 1024 * 1024 * 1024,
  };
}

/** Gate's -f/-F/-d/-o flags over the daemon's defaults and files. */
export function parseDaemonArgs(argv: readonly string[], dataDir = daemonPaths().dataDir): ParsedArgs {
  return parseArgs(argv, { defaultFiles: serverConfigFiles('daemon'), overrides: daemonDefaults(dataDir) });
}
