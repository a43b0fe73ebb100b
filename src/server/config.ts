// gate-server configuration: a tree of keys with defaults, filled from TOML
// files and `-o key=value` options in Gate's manner (cli.md §1, §4). Keys
// follow Gate's names where the meaning is the same; the others are ours and
// documented in docs/server.md.

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseToml, type TomlTable, type TomlValue } from './toml.ts';

export interface HttpSource {
  name: string;
  addr: string;
}

export interface Limits {
  /** Pinned modules per principal. */
  maxmodules: number;
  /** Instance records (running or not) per principal. */
  maxinstances: number;
  /** Running instances per principal. */
  maxprocs: number;
  /** Bytes of one wasm module. */
  maxmodulesize: number;
  /** Linear memory of one instance, in bytes. */
  maxmemorysize: number;
  /** Sum of the memory limits of a principal's running instances, in bytes. */
  totalmemorysize: number;
  /** Run time of one instance over all its runs, in seconds; 0 = unlimited. */
  timelimit: number;
  /** Clock granularity given to programs (Go duration). */
  timeresolution: string;
}

export interface Config {
  server: {
    uuid: string;
    datadir: string;
    identityfile: string;
    /** MiB of stored modules kept that nothing refers to (uploaded for calls, fetched, unpinned); the oldest go first. */
    unpinnedmodules: number;
  };
  http: {
    addr: string;
    authority: string;
    audience: string[];
    origins: string[];
    metrics: boolean;
    maxbodysize: number;
    /** Seconds a request body (an upload, an update) may take to arrive. */
    bodytimeout: number;
    tls: { certfile: string; keyfile: string };
    accesslog: boolean;
  };
  access: {
    policy: string;
    anonymous: boolean;
    anonymoustimelimit: number;
    /** Anonymous instances running at once, server-wide. */
    anonymousprocs: number;
    /** New principals admitted per minute from one source address (0: any number). */
    newprincipals: number;
    nonces: boolean;
    local: boolean;
    ssh: { authorizedkeys: string };
  };
  principal: Limits;
  source: { ipfs: { addr: string }; http: HttpSource[] };
  runtime: {
    workers: number;
    watchdog: number;
    checkpoint: number;
    cachedir: string;
    /** MiB the cache directory is kept below, by removing what was used longest ago (0: no bound). */
    cachesize: number;
    /** Live instances per worker process (V8 holds at most ~16,000 memories per process). */
    maxinstances: number;
    /** V8 heap of a worker process in MiB (0: Node's default). */
    workerheap: number;
    /** Resident memory a worker process may reach in MiB (0: no cap). */
    workermemory: number;
    /** Preparer processes. */
    preparers: number;
    /** Seconds one module preparation may take. */
    preparetimeout: number;
    /** Resident memory of a preparer during one preparation, in MiB. */
    preparememory: number;
    /** Modules of one owner waiting for preparation. */
    preparequeue: number;
  };
  log: { level: string };
}

export function stateHome(): string {
  return process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
}

export function configHome(): string {
  return process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
}

export function defaultConfig(): Config {
  return {
    server: { uuid: '', datadir: path.join(stateHome(), 'gate'), identityfile: '', unpinnedmodules: 256 },
    http: {
      addr: '127.0.0.1:6473',
      authority: '',
      audience: [],
      origins: ['*'],
      metrics: true,
      maxbodysize: 65536,
      bodytimeout: 60,
      tls: { certfile: '', keyfile: '' },
      accesslog: false,
    },
    access: {
      policy: 'public',
      anonymous: true,
      anonymoustimelimit: 60,
      anonymousprocs: 64,
      newprincipals: 30,
      nonces: true,
      local: false,
      ssh: { authorizedkeys: path.join(os.homedir(), '.ssh', 'authorized_keys') },
    },
    principal: {
      maxmodules: 64,
      maxinstances: 64,
      maxprocs: 16,
      maxmodulesize: 32 * 1024 * 1024,
      maxmemorysize: 32 * 1024 * 1024,
      totalmemorysize: 512 * 1024 * 1024,
      timelimit: 0,
      timeresolution: '10ms',
    },
    source: { ipfs: { addr: '' }, http: [] },
    // A pool of about one worker thread per core (see docs/architecture.md).
    runtime: {
      workers: os.availableParallelism(),
      watchdog: 10,
      checkpoint: 0,
      cachedir: '',
      cachesize: 2048,
      maxinstances: 15_000,
      workerheap: 0,
      workermemory: 0,
      preparers: 2,
      preparetimeout: 120,
      preparememory: 2048,
      preparequeue: 8,
    },
    log: { level: 'info' },
  };
}

export class ConfigError extends Error {}

type Node = Record<string, unknown>;

/** Set one key from text (`-o path.to.key=value`), converting to the default's type. */
export function setOption(config: Config, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new ConfigError(`option must be key=value: ${assignment}`);
  const keys = assignment.slice(0, eq).split('.');
  setPath(config as unknown as Node, keys, assignment.slice(eq + 1), assignment.slice(0, eq));
}

function setPath(node: Node, keys: string[], value: TomlValue, name: string): void {
  let current: unknown = node;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i].toLowerCase();
    if (Array.isArray(current)) {
      const index = Number(k);
      if (!Number.isInteger(index) || index < 0 || index > current.length) throw new ConfigError(`unknown configuration key: ${name}`);
      current[index] ??= { name: '', addr: '' };
      current = current[index];
      continue;
    }
    if (typeof current !== 'object' || current === null || !(k in current)) throw new ConfigError(`unknown configuration key: ${name}`);
    current = (current as Node)[k];
  }
  const last = keys[keys.length - 1].toLowerCase();
  if (typeof current !== 'object' || current === null || Array.isArray(current) || !(last in current)) {
    throw new ConfigError(`unknown configuration key: ${name}`);
  }
  const target = current as Node;
  target[last] = convert(target[last], value, name);
}

function convert(old: unknown, value: TomlValue, name: string): unknown {
  if (typeof old === 'boolean') {
    if (typeof value === 'boolean') return value;
    const s = String(value).toLowerCase();
    if (['true', 'yes', 'y', 'on', '1'].includes(s)) return true;
    if (['false', 'no', 'n', 'off', '0'].includes(s)) return false;
  } else if (typeof old === 'number') {
    const n = typeof value === 'number' ? value : Number(String(value).replace(/_/g, ''));
    if (Number.isFinite(n) && String(value).trim() !== '') return n;
  } else if (typeof old === 'string') {
    if (typeof value !== 'object') return expand(String(value));
  } else if (Array.isArray(old)) {
    if (Array.isArray(value)) {
      if (old.length === 0 && value.every((v) => typeof v === 'string')) return value.map((v) => expand(v as string));
      if (value.every((v) => typeof v === 'object' && !Array.isArray(v))) return value.map((v) => ({ name: '', addr: '', ...(v as object) }));
      if (value.every((v) => typeof v === 'string')) return value.map((v) => expand(v as string));
    } else if (typeof value === 'string') {
      if (value === '') return [];
      if (value.startsWith('[')) {
        try {
          return convert(old, JSON.parse(value) as TomlValue, name);
        } catch {
          // fall through to the error
        }
      } else return [expand(value)];
    }
  }
  throw new ConfigError(`invalid value for ${name}: ${JSON.stringify(value)}`);
}

/** ${HOME} and ${XDG_*_HOME}, as Gate expands them. */
function expand(s: string): string {
  return s.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    if (name === 'HOME') return os.homedir();
    if (name === 'XDG_STATE_HOME') return stateHome();
    if (name === 'XDG_CONFIG_HOME') return configHome();
    if (name === 'XDG_CACHE_HOME') return process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
    if (name === 'XDG_DATA_HOME') return process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
    return process.env[name] ?? whole;
  });
}

/** Merge a TOML document into the configuration. */
export function applyToml(config: Config, text: string, file: string): void {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as Error).message}`);
  }
  const walk = (table: TomlTable, prefix: string[]) => {
    for (const [k, v] of Object.entries(table)) {
      const keys = [...prefix, k];
      const isTable = typeof v === 'object' && !Array.isArray(v);
      const targetIsTable = lookup(config, keys);
      if (isTable && targetIsTable && typeof targetIsTable === 'object' && !Array.isArray(targetIsTable)) walk(v, keys);
      else {
        try {
          setPath(config as unknown as Node, keys, v, keys.join('.'));
        } catch (error) {
          throw new ConfigError(`${file}: ${(error as Error).message}`);
        }
      }
    }
  };
  walk(doc, []);
}

function lookup(config: Config, keys: string[]): unknown {
  let node: unknown = config;
  for (const k of keys) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Node)[k.toLowerCase()];
  }
  return node;
}

export interface ParsedArgs {
  config: Config;
  help: boolean;
  version: boolean;
}

/**
 * Gate's flags, processed in order after the default files: -F file (forget
 * everything so far), -f file, -d dir, -o key=value; plus -h and --version.
 */
export function parseArgs(argv: string[], defaults: string[] = defaultFiles()): ParsedArgs {
  type Step = { kind: 'file' | 'dir' | 'option' | 'glob'; arg: string };
  let steps: Step[] = defaults.map((arg) => ({ kind: 'glob', arg }));
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
    if (!['F', 'f', 'd', 'o'].includes(flag)) throw new ConfigError(`unknown flag: ${a}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag needs an argument: ${a}`);
    if (flag === 'F') steps = [{ kind: 'file', arg: value }];
    else if (flag === 'f') steps.push({ kind: 'file', arg: value });
    else if (flag === 'd') steps.push({ kind: 'dir', arg: value });
    else if (flag === 'o') steps.push({ kind: 'option', arg: value });
    else throw new ConfigError(`unknown flag: ${a}`);
  }
  const config = defaultConfig();
  for (const step of steps) {
    if (step.kind === 'option') setOption(config, step.arg);
    else if (step.kind === 'file') applyToml(config, readText(step.arg), step.arg);
    else if (step.kind === 'glob') {
      const dir = path.dirname(step.arg);
      const base = path.basename(step.arg);
      for (const name of listDir(dir)) {
        if (globMatch(base, name)) applyToml(config, readText(path.join(dir, name)), path.join(dir, name));
      }
    } else {
      for (const name of listDir(step.arg).filter((n) => n.endsWith('.toml'))) {
        applyToml(config, readText(path.join(step.arg, name)), path.join(step.arg, name));
      }
    }
  }
  return { config, help, version };
}

export function defaultFiles(): string[] {
  return [path.join(configHome(), 'gate', 'server.toml'), path.join(configHome(), 'gate', 'server.d', '*.toml')];
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

/** Go duration text (`10ms`, `1h30m`) in nanoseconds. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let rest = s;
  if (rest === '') throw new ConfigError(`invalid duration: ${JSON.stringify(s)}`);
  while (rest !== '') {
    const m = /^(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new ConfigError(`invalid duration: ${JSON.stringify(s)}`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Keys and their current values, for -h. */
export function describe(config: Config): string[] {
  const out: string[] = [];
  const walk = (node: unknown, prefix: string) => {
    if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, prefix ? `${prefix}.${k}` : k);
    } else out.push(`  ${prefix} = ${JSON.stringify(node)}`);
  };
  walk(config, '');
  return out;
}
