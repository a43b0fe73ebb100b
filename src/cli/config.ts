// Client configuration: ${XDG_CONFIG_HOME}/gate/client.toml and client.d/*.toml,
// then -f/-F files and -o key=value options, in Gate's manner (cli.md §1, §2.2).
// Gate's keys keep their meaning; `nonce` and `daemon.*` are ours (docs/cli.md).

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseToml, type TomlTable, type TomlValue } from '../server/toml.ts';
import { CliError } from './errors.ts';

export interface ClientConfig {
  identityfile: string;
  pin: boolean;
  moduletags: string[];
  wait: boolean;
  function: string;
  instance: string;
  instancetags: string[];
  scope: string[];
  suspend: boolean;
  debuglog: string;
  /** Ours: send a single-use nonce in each token (the server must keep a nonce store). */
  nonce: boolean;
  repl: { historyfile: string; historylimit: number };
}

export function configHome(): string {
  return process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
}

export function defaultClientConfig(): ClientConfig {
  return {
    identityfile: path.join(os.homedir(), '.ssh', 'id_ed25519'),
    pin: true,
    moduletags: [],
    wait: true,
    function: '',
    instance: '',
    instancetags: [],
    scope: [],
    suspend: false,
    debuglog: '',
    nonce: true,
    repl: { historyfile: '', historylimit: 500 },
  };
}

export type ConfigStep = { kind: 'file' | 'reset' | 'option'; arg: string };

/** Default files, then the steps from the command line, in order. */
export function loadClientConfig(steps: readonly ConfigStep[]): ClientConfig {
  const config = defaultClientConfig();
  let queue: ConfigStep[] = [];
  const dir = path.join(configHome(), 'gate');
  const defaults: ConfigStep[] = [{ kind: 'file', arg: path.join(dir, 'client.toml') }];
  for (const name of list(path.join(dir, 'client.d')).filter((n) => n.endsWith('.toml'))) {
    defaults.push({ kind: 'file', arg: path.join(dir, 'client.d', name) });
  }
  const optional = new Set(defaults.map((s) => s.arg));
  queue = defaults;
  for (const step of steps) {
    if (step.kind === 'reset') queue = [{ kind: 'file', arg: step.arg }];
    else queue.push(step);
  }
  for (const step of queue) {
    if (step.kind === 'option') setOption(config, step.arg);
    else {
      const text = readText(step.arg, optional.has(step.arg));
      if (text !== undefined) applyToml(config, text, step.arg);
    }
  }
  return config;
}

function readText(file: string, optional: boolean): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`, 2);
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function setOption(config: ClientConfig, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new CliError(`option must be key=value: ${assignment}`, 2);
  setKey(config, assignment.slice(0, eq).toLowerCase().split('.'), assignment.slice(eq + 1), assignment.slice(0, eq));
}

function applyToml(config: ClientConfig, text: string, file: string): void {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`, 2);
  }
  const walk = (table: TomlTable, prefix: string[]) => {
    for (const [k, v] of Object.entries(table)) {
      const keys = [...prefix, k.toLowerCase()];
      if (typeof v === 'object' && !Array.isArray(v)) walk(v, keys);
      else {
        try {
          setKey(config, keys, v, keys.join('.'));
        } catch (error) {
          throw new CliError(`${file}: ${(error as Error).message}`, 2);
        }
      }
    }
  };
  walk(doc, []);
}

function setKey(config: ClientConfig, keys: string[], value: TomlValue, name: string): void {
  let node = config as unknown as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) throw new CliError(`unknown configuration key: ${name}`, 2);
    node = next as Record<string, unknown>;
  }
  const last = keys[keys.length - 1];
  if (!(last in node) || (typeof node[last] === 'object' && !Array.isArray(node[last]))) {
    throw new CliError(`unknown configuration key: ${name}`, 2);
  }
  node[last] = convert(node[last], value, name);
}

function convert(old: unknown, value: TomlValue, name: string): unknown {
  const bad = () => new CliError(`invalid value for ${name}: ${JSON.stringify(value)}`, 2);
  if (typeof old === 'boolean') {
    if (typeof value === 'boolean') return value;
    const s = String(value).toLowerCase();
    if (['true', 'yes', 'y', 'on'].includes(s)) return true;
    if (['false', 'no', 'n', 'off'].includes(s)) return false;
    throw bad();
  }
  if (typeof old === 'number') {
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isInteger(n) || String(value).trim() === '') throw bad();
    return n;
  }
  if (typeof old === 'string') {
    if (typeof value === 'object') throw bad();
    return expand(String(value));
  }
  // String list: TOML array, or from -o: empty → [], "[...]" → JSON, else one element.
  if (Array.isArray(value)) {
    if (!value.every((v) => typeof v === 'string')) throw bad();
    return value.map((v) => expand(v as string));
  }
  if (typeof value !== 'string') throw bad();
  if (value === '') return [];
  if (value.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw bad();
    }
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) throw bad();
    return parsed.map(expand);
  }
  return [expand(value)];
}

/** ${HOME} and ${XDG_*_HOME}, as Gate expands them. */
export function expand(s: string): string {
  return s.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const home = os.homedir();
    switch (name) {
      case 'HOME':
        return home;
      case 'XDG_CONFIG_HOME':
        return configHome();
      case 'XDG_STATE_HOME':
        return process.env.XDG_STATE_HOME || path.join(home, '.local', 'state');
      case 'XDG_CACHE_HOME':
        return process.env.XDG_CACHE_HOME || path.join(home, '.cache');
      case 'XDG_DATA_HOME':
        return process.env.XDG_DATA_HOME || path.join(home, '.local', 'share');
      default:
        return process.env[name] ?? whole;
    }
  });
}
