// The configuration keys of gate-server and gate-daemon: one table of keys
// with type, default and doc (config-loader.ts reads files and -o options
// into it). Keys follow Gate's names where the meaning is the same; the
// others are ours. docs/server.md lists them all; `gate-server -h` prints
// them with their current values. To add a key, add a row here (and to the
// docs); its type in Config follows from the row.

import os from 'node:os';
import path from 'node:path';
import { ConfigError, configHome, describe as describeKeys, key, loadConfig, stateHome, type ConfigOf, type Step } from './config-loader.ts';

export { ConfigError, configHome, parseDuration, stateHome } from './config-loader.ts';

/** Who may discover a service: the same four keys for every service. */
function access<N extends string>(name: N, enabled: boolean, what: string) {
  return {
    [`service.${name}.enabled`]: key.bool(enabled, `offer the ${what} service`),
    [`service.${name}.principals`]: key.strings([], `when non-empty, only these principal ids may discover ${name}`),
    [`service.${name}.denyprincipals`]: key.strings([], `these principal ids may not discover ${name}`),
    [`service.${name}.anonymous`]: key.bool(true, `programs of anonymous callers may discover ${name}`),
  } as {
    [K in `service.${N}.enabled` | `service.${N}.anonymous`]: ReturnType<typeof key.bool>;
  } & {
    [K in `service.${N}.principals` | `service.${N}.denyprincipals`]: ReturnType<typeof key.strings>;
  };
}

export const SERVER_KEYS = {
  'server.uuid': key.string('', 'the server id in the API document (default: generated once, kept in the data dir)'),
  'server.datadir': key.string(() => path.join(stateHome(), 'gate'), 'inventory database and module files'),
  'server.identityfile': key.string('', 'Ed25519 private key (OpenSSH or PKCS#8 PEM) that signs the server identity token'),
  'server.maxinstances': key.int(1_000_000, 'instances the server keeps in all (running, hibernated or stopped); 503 past it', 1),
  'server.unpinnedmodules': key.int(256, 'MiB of stored modules nothing refers to (uploaded for calls, fetched, unpinned) kept as a cache; the oldest go first'),

  'database.url': key.string('', 'postgres://USER@HOST:PORT/DB: keep the inventory and module bytes in PostgreSQL, shared by every server that names it (docs/cluster.md); empty: this server alone, in the data dir'),
  'database.lease': key.number(10, 'seconds a server of a cluster holds its lease without renewing it; past it, another server takes its instances over', 0.3),

  'http.addr': key.string('127.0.0.1:6473', 'listen address: host:port, [v6]:port, unix:PATH or an absolute socket path'),
  'http.authority': key.string('', 'external host[:port] the clients use, added to the accepted audiences'),
  'http.audience': key.strings([], 'accepted token audiences (replaces the derived list); the first is the realm'),
  'http.origins': key.strings([], "allowed Origin header values (* = any; default: the server's own origins); other origins get 403"),
  'http.metrics': key.bool(true, 'serve Prometheus metrics at /metrics'),
  'http.console': key.bool(true, 'serve the web console at /console/ (docs/console.md)'),
  'http.maxbodysize': key.int(65536, 'largest update/debug request body in bytes', 1),
  'http.bodytimeout': key.number(60, "seconds a request body (an upload, an update) or a websocket call's first messages may take to arrive (408)", 0.001),
  'http.tls.certfile': key.string('', 'serve HTTPS with this certificate (PEM)'),
  'http.tls.keyfile': key.string('', 'the private key of http.tls.certfile (PEM; default: the certificate file)'),
  'http.accesslog': key.bool(false, 'log every request at level info (otherwise debug)'),

  'access.policy': key.string('public', 'public (everyone) or ssh (only keys in access.ssh.authorizedkeys)'),
  'access.anonymous': key.bool(true, 'with public: allow calls without credentials'),
  'access.anonymoustimelimit': key.number(60, 'run time limit of anonymous calls in seconds (0: principal.timelimit)'),
  'access.anonymousprocs': key.int(64, 'anonymous calls running at once, server-wide'),
  'access.newprincipals': key.int(30, 'new principals admitted per minute from one source address (0: any number; 429 past it)'),
  'access.nonces': key.bool(true, 'keep token nonces (single-use tokens); otherwise a nonce is refused'),
  'access.local': key.bool(false, 'accept unsigned alg:none tokens as principal local (for a Unix socket only)'),
  'access.ssh.authorizedkeys': key.string(() => path.join(os.homedir(), '.ssh', 'authorized_keys'), 'OpenSSH authorized_keys file; only ssh-ed25519 lines count'),

  'principal.maxmodules': key.int(64, 'pinned modules per principal'),
  'principal.maxinstances': key.int(64, 'instances (running or stopped) per principal'),
  'principal.maxprocs': key.int(16, 'running instances per principal'),
  'principal.maxmodulesize': key.int(32 * 1024 * 1024, 'bytes of one module', 8),
  'principal.maxmemorysize': key.int(32 * 1024 * 1024, 'linear memory of one instance in bytes'),
  'principal.totalmemorysize': key.int(512 * 1024 * 1024, "sum of the memory limits of a principal's running instances in bytes"),
  'principal.timelimit': key.number(0, 'run time of one instance over all its runs in seconds (0: none)'),
  'principal.timeresolution': key.duration('10ms', 'clock granularity given to programs (Go duration)'),

  'source.ipfs.addr': key.string('', 'IPFS HTTP API server; enables the ipfs module source'),
  'source.http': key.tables(['name', 'addr'], 'HTTP module sources: /gate-0/module/<name>/<rest> fetches <addr>/<name>/<rest>'),

  ...access('identity', true, 'identity'),
  ...access('scope', true, 'scope'),
  ...access('random', true, 'random'),
  'service.random.bitsperminute': key.number(7680, 'random bits a program may take per minute (0: the service is not offered)'),
  ...access('localhost', true, 'gate.computer/localhost'),
  'service.localhost.addr': key.string('', 'http://host[:port], https://… or unix:///path; empty: the localhost service is not offered'),
  'service.localhost.maxconcurrent': key.int(10, 'localhost requests in progress at once per instance', 1),
  'service.localhost.maxoutstanding': key.int(64, 'unanswered localhost calls per instance before 503 replies (at most 255)', 1),
  'service.localhost.timeout': key.int(30_000, 'localhost request timeout in milliseconds', 1),
  ...access('peer', false, 'peer'),
  'service.peer.channel': key.string('gate-peer', "BroadcastChannel joining the worker processes' peer hubs (relayed by the server)"),
  'service.grpc.commands': key.strings([], 'executables serving gRPC services on fd 3: "@/path argv0 args…" or "program args…"'),
  'service.grpc.targets': key.strings([], 'gRPC services to dial: "<target> [insecure] [optional]", e.g. "unix:/run/svc.sock insecure"'),
  'service.access': key.map(
    {
      enabled: key.bool(true, 'offer the service'),
      principals: key.strings([], 'when non-empty, only these principal ids may discover it'),
      denyprincipals: key.strings([], 'these principal ids may not discover it'),
      anonymous: key.bool(true, 'programs of anonymous callers may discover it'),
    },
    'access to external (gRPC) services by name: [service.access."example.net/svc"]',
  ),

  'runtime.workers': key.int(() => os.availableParallelism(), "on a TCP address, this many shard processes that each serve HTTP on the port and run the instances of their requests; on a Unix socket or with database.url, run instances in this many worker processes; 0 runs everything in the server's thread"),
  'runtime.watchdog': key.number(10, 'seconds after which a shard or worker process that stopped answering is killed (the instance in its slice ends naming this key)', 0.001),
  'runtime.checkpoint': key.number(0, 'every N seconds, checkpoint running persistent instances (0: off)'),
  'runtime.cachedir': key.string('', 'prepared modules, shared with the gate command (default ${XDG_CACHE_HOME}/gate-ts)'),
  'runtime.cachesize': key.int(2048, 'MiB the prepared-module cache is kept below, removing what was used longest ago (0: no bound)'),
  'runtime.maxinstances': key.int(15_000, 'live instances (holding a memory) per worker process: its memory pool (V8 holds about 16,000 memories per process); when full, the longest waiting hibernate at once, else 503', 1),
  'runtime.hibernate': key.number(10, 'seconds a persistent instance may wait (for input, a reply, a connection, a timer) or stay stopped before it hibernates to the data dir and leaves memory (0: only when memory is short)'),
  'runtime.workerheap': key.int(0, "V8 heap of a worker process in MiB, where instances' tables live (0: Node's default)"),
  'runtime.workermemory': key.int(0, 'MiB of resident memory a worker process may reach before it is killed and replaced (0: no cap)'),
  'runtime.preparers': key.int(2, 'preparer processes (one is always left to owners other than the busiest)', 1),
  'runtime.preparetimeout': key.number(120, 'seconds one module preparation may take', 0.001),
  'runtime.preparememory': key.int(2048, 'MiB of resident memory a preparer may reach during one preparation', 1),
  'runtime.preparequeue': key.int(8, 'modules of one owner waiting for preparation (503 past it)', 1),

  'log.level': key.string('info', 'debug, info, warn, error or silent'),
  'log.format': key.string('auto', 'json, text, or auto (text on a terminal, else JSON lines)'),
};

export type Config = ConfigOf<typeof SERVER_KEYS>;
export type Limits = Config['principal'];
export type HttpSource = Config['source']['http'][number];

export function defaultConfig(): Config {
  return loadConfig(SERVER_KEYS, []);
}

/** gate-server's default files; gate-daemon's are daemon.toml and daemon.d/*.toml. */
export function serverConfigFiles(name: 'server' | 'daemon' = 'server'): string[] {
  const dir = path.join(configHome(), 'gate');
  return [path.join(dir, `${name}.toml`), path.join(dir, `${name}.d`, '*.toml')];
}

export interface ParsedArgs {
  config: Config;
  help: boolean;
  version: boolean;
}

export interface ParseOptions {
  defaultFiles?: readonly string[];
  overrides?: Readonly<Record<string, unknown>>;
}

/**
 * Gate's flags, processed in order after the default files: -F FILE (forget
 * everything so far), -f FILE, -d DIR, -o KEY=VALUE; plus -h and --version.
 */
export function parseArgs(argv: readonly string[], options: ParseOptions = { defaultFiles: serverConfigFiles() }): ParsedArgs {
  const steps: Step[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--?([A-Za-z]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new ConfigError(`unexpected argument: ${a}`);
    const flag = m[1];
    if (flag === 'h' || flag === 'help') {
      help = true;
      continue;
    }
    if (flag === 'version' || flag === 'V') {
      version = true;
      continue;
    }
    const kind = ({ F: 'reset', f: 'file', d: 'dir', o: 'option' } as const)[flag as 'F' | 'f' | 'd' | 'o'];
    if (kind === undefined) throw new ConfigError(`unknown flag: ${a}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag needs an argument: ${a}`);
    steps.push({ kind, arg: value });
  }
  const config = loadConfig(SERVER_KEYS, steps, options);
  return { config, help, version };
}

/** Keys, types, current values and docs, for -h. */
export function describe(config: Config): string[] {
  return describeKeys(SERVER_KEYS, config);
}
