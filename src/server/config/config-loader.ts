// The one configuration loader of gate-server, gate-daemon and `gate`: a
// program describes its keys in one table (type, default, doc), and this
// module fills a typed tree from TOML files (smol-toml) and `-o key=value`
// options in Gate's manner: default files first (globs; missing ones are
// fine), then -F (forget what is queued, read this file), -f FILE, -d DIR
// (DIR/*.toml in name order) and -o in order. Unknown keys and values of the
// wrong type are errors naming the key and the file (or -o) they came from.

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

type SmolToml = typeof import('smol-toml');
let smolToml: SmolToml | undefined;

/** smol-toml, loaded when first needed: most runs of a command read no file. */
function toml(): SmolToml {
  smolToml ??= createRequire(import.meta.url)('smol-toml') as SmolToml;
  return smolToml;
}

/** A bad key, value, file or flag; programs print it and exit 2 (as Gate does). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Default<T> = T | (() => T);

interface SpecBase<T> {
  readonly default: Default<T>;
  readonly doc: string;
  /** Phantom: the value's type, for ConfigOf. */
  readonly value?: T;
}

export type KeySpec =
  | (SpecBase<boolean> & { readonly type: 'bool' })
  | (SpecBase<number> & { readonly type: 'int'; readonly min?: number })
  | (SpecBase<number> & { readonly type: 'number'; readonly min?: number })
  | (SpecBase<string> & { readonly type: 'string' })
  | (SpecBase<string> & { readonly type: 'duration' })
  | (SpecBase<string[]> & { readonly type: 'strings' })
  | (SpecBase<Record<string, string>[]> & { readonly type: 'tables'; readonly fields: readonly string[] })
  | (SpecBase<Record<string, unknown>> & { readonly type: 'map'; readonly fields: Schema });

/** Dotted key → spec; keys are lower case. */
export type Schema = { readonly [key: string]: KeySpec };

type Spec<T, K extends KeySpec['type']> = Omit<Extract<KeySpec, { type: K }>, 'value'> & { readonly value?: T };

export const key = {
  bool: (value: Default<boolean>, doc: string): Spec<boolean, 'bool'> => ({ type: 'bool', default: value, doc }),
  /** A whole number, at least min (default 0). */
  int: (value: Default<number>, doc: string, min = 0): Spec<number, 'int'> => ({ type: 'int', default: value, doc, min }),
  /** A finite number, at least min (default 0). */
  number: (value: Default<number>, doc: string, min = 0): Spec<number, 'number'> => ({ type: 'number', default: value, doc, min }),
  /** Text; ${HOME} and ${XDG_*_HOME} are expanded. */
  string: (value: Default<string>, doc: string): Spec<string, 'string'> => ({ type: 'string', default: value, doc }),
  /** A Go duration (`10ms`, `1h30m`), kept as text and checked when read. */
  duration: (value: string, doc: string): Spec<string, 'duration'> => ({ type: 'duration', default: value, doc }),
  strings: (value: Default<string[]>, doc: string): Spec<string[], 'strings'> => ({ type: 'strings', default: value, doc }),
  /** An array of tables of strings (`[[source.http]]`); -o addresses elements by index. */
  tables: <F extends string>(fields: readonly F[], doc: string): Spec<Record<F, string>[], 'tables'> => ({ type: 'tables', default: () => [], fields, doc }),
  /** Tables under names of the user's choosing (`[service.access."example.net/svc"]`), each with fields. */
  map: <S extends Schema>(fields: S, doc: string): Spec<Record<string, Partial<ConfigOf<S>>>, 'map'> => ({ type: 'map', default: () => ({}), fields, doc }),
};

// The typed tree of a schema: 'a.b' → { a: { b: T } }, all keys merged.
type Nest<K extends string, V> = K extends `${infer H}.${infer R}` ? { [P in H]: Nest<R, V> } : { [P in K]: V };
type Merge<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type Tidy<T> = T extends readonly unknown[] ? T : T extends object ? { -readonly [K in keyof T]: Tidy<T[K]> } : T;
type ValueOf<S> = S extends { readonly value?: infer T } ? Exclude<T, undefined> : never;
export type ConfigOf<S extends Schema> = Tidy<Merge<{ [K in keyof S & string]: Nest<K, ValueOf<S[K]>> }[keyof S & string]>>;

type Node = Record<string, unknown>;

/** The schema's defaults as a tree. */
export function defaults<S extends Schema>(schema: S): ConfigOf<S> {
  const tree: Node = {};
  for (const [name, spec] of Object.entries(schema)) {
    const value = typeof spec.default === 'function' ? (spec.default as () => unknown)() : spec.default;
    place(tree, name.split('.'), structuredClone(value));
  }
  return tree as ConfigOf<S>;
}

function place(tree: Node, keys: string[], value: unknown): void {
  let node = tree;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Node;
  node[keys[keys.length - 1]] = value;
}

/** One configuration step from the command line, in order. */
export type Step = { kind: 'file' | 'reset' | 'dir' | 'option'; arg: string };

export interface LoadOptions {
  /** Files read first; globs (`*` in the last element) allowed; missing ones are fine. */
  defaultFiles?: readonly string[];
  /** The program's own defaults by dotted key (gate-daemon's limits), applied before any file. */
  overrides?: Readonly<Record<string, unknown>>;
}

/** Defaults, overrides, default files, then the steps. */
export function loadConfig<S extends Schema>(schema: S, steps: readonly Step[], options: LoadOptions = {}): ConfigOf<S> {
  const config = defaults(schema) as Node;
  for (const [name, value] of Object.entries(options.overrides ?? {})) assign(schema, config, name, value, 'defaults');
  let queue: { kind: Step['kind'] | 'optional'; arg: string }[] = (options.defaultFiles ?? []).map((arg) => ({ kind: 'optional', arg }));
  for (const step of steps) {
    if (step.kind === 'reset') queue = [{ kind: 'file', arg: step.arg }];
    else queue.push(step);
  }
  for (const step of queue) {
    if (step.kind === 'option') setOption(schema, config, step.arg);
    else if (step.kind === 'file') applyFile(schema, config, step.arg);
    else if (step.kind === 'dir') {
      for (const name of listDir(step.arg, true).filter((n) => n.endsWith('.toml'))) applyFile(schema, config, path.join(step.arg, name));
    } else {
      const dir = path.dirname(step.arg);
      const pattern = globPattern(path.basename(step.arg));
      for (const name of listDir(dir, false).filter((n) => pattern.test(n))) applyFile(schema, config, path.join(dir, name));
    }
  }
  return config as ConfigOf<S>;
}

/** `-o path.to.key=value`: the text converted as the key's type says. */
function setOption(schema: Schema, config: object, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new ConfigError(`-o ${assignment}: expected KEY=VALUE`);
  assign(schema, config as Node, assignment.slice(0, eq), new OptionText(assignment.slice(eq + 1)), '-o');
}

/** Merge one TOML document into the configuration. */
function applyToml(schema: Schema, config: object, text: string, file: string): void {
  let doc: Node;
  try {
    doc = toml().parse(text) as Node;
  } catch (error) {
    const detail = error instanceof toml().TomlError ? `line ${error.line}, column ${error.column}: ${firstLine(error.message)}` : (error as Error).message;
    throw new ConfigError(`${file}: invalid TOML: ${detail}`);
  }
  const walk = (table: Node, prefix: string) => {
    for (const [k, v] of Object.entries(table)) {
      const name = prefix + k.toLowerCase();
      if (isTable(v) && !(name in schema) && !isMapKey(schema, name)) walk(v, `${name}.`);
      else assign(schema, config as Node, name, v, file);
    }
  };
  walk(doc, '');
}

function applyFile(schema: Schema, config: Node, file: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message}`);
  }
  applyToml(schema, config, text, file);
}

/** Text from the command line, converted by the key's type (not by its look). */
class OptionText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

function isTable(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof OptionText);
}

function isMapKey(schema: Schema, name: string): boolean {
  return schema[name]?.type === 'map';
}

/** Set the key `name` (any case) from a TOML value or option text. */
function assign(schema: Schema, config: Node, rawName: string, value: unknown, where: string): void {
  const name = rawName.toLowerCase();
  const fail = (problem: string) => new ConfigError(`${where}: ${rawName}: ${problem}`);
  const spec = schema[name];
  if (spec !== undefined) {
    if (spec.type === 'map') {
      if (!isTable(value)) throw fail('must be a table of tables');
      for (const [entry, fields] of Object.entries(value)) {
        if (!isTable(fields)) throw fail(`${JSON.stringify(entry)} must be a table`);
        for (const [field, v] of Object.entries(fields)) setMapField(spec.fields, config, name, entry, field, v, where, rawName);
      }
      return;
    }
    place(config, name.split('.'), convert(spec, value, fail));
    return;
  }
  // An element of an array of tables (`source.http.0.name`) or an entry of a map (`service.access.NAME.field`).
  for (const [prefix, s] of Object.entries(schema)) {
    if (!name.startsWith(`${prefix}.`)) continue;
    const rest = rawName.slice(prefix.length + 1);
    if (s.type === 'tables') {
      const m = /^(\d+)\.([a-z0-9_]+)$/.exec(rest.toLowerCase());
      const list = lookup(config, prefix) as Record<string, string>[];
      if (!m || !s.fields.includes(m[2]) || Number(m[1]) > list.length) break;
      const index = Number(m[1]);
      list[index] ??= Object.fromEntries(s.fields.map((f) => [f, '']));
      list[index][m[2]] = convert({ type: 'string', default: '', doc: '' }, value, fail) as string;
      return;
    }
    if (s.type === 'map') {
      const dot = rest.lastIndexOf('.');
      if (dot <= 0) break;
      setMapField(s.fields, config, prefix, rest.slice(0, dot), rest.slice(dot + 1).toLowerCase(), value, where, rawName);
      return;
    }
  }
  throw new ConfigError(`${where}: unknown configuration key: ${rawName}`);
}

function setMapField(fields: Schema, config: Node, prefix: string, entry: string, field: string, value: unknown, where: string, rawName: string): void {
  const spec = fields[field.toLowerCase()];
  const full = `${prefix}.${entry}.${field}`;
  if (spec === undefined || spec.type === 'map') throw new ConfigError(`${where}: unknown configuration key: ${rawName === prefix ? full : rawName}`);
  const map = lookup(config, prefix) as Record<string, Node>;
  (map[entry] ??= {})[field.toLowerCase()] = convert(spec, value, (problem) => new ConfigError(`${where}: ${full}: ${problem}`));
}

function lookup(config: Node, name: string): unknown {
  let node: unknown = config;
  for (const k of name.split('.')) node = (node as Node)[k];
  return node;
}

const TRUE = ['true', 'yes', 'y', 'on'];
const FALSE = ['false', 'no', 'n', 'off'];

/** A value for spec from TOML or option text, or an error saying what the key takes. */
function convert(spec: KeySpec, value: unknown, fail: (problem: string) => ConfigError): unknown {
  const text = value instanceof OptionText ? value.text : undefined;
  const shown = text !== undefined ? JSON.stringify(text) : describeValue(value);
  switch (spec.type) {
    case 'bool': {
      const word = text ?? (typeof value === 'string' ? value : undefined);
      if (typeof value === 'boolean') return value;
      if (word !== undefined && TRUE.includes(word.toLowerCase())) return true;
      if (word !== undefined && FALSE.includes(word.toLowerCase())) return false;
      throw fail(`must be true or false (or yes/no, y/n, on/off), not ${shown}`);
    }
    case 'int':
    case 'number': {
      const n = text !== undefined ? numberFromText(text) : value;
      const whole = spec.type === 'int';
      if (typeof n !== 'number' || !Number.isFinite(n) || (whole && !Number.isSafeInteger(n))) {
        throw fail(`must be ${whole ? 'a whole number' : 'a finite number'}, not ${shown}`);
      }
      if (n < (spec.min ?? 0)) throw fail(`must be at least ${spec.min ?? 0}, not ${shown}`);
      return n;
    }
    case 'string':
    case 'duration': {
      const s = text ?? (typeof value === 'string' ? value : undefined);
      if (s === undefined) throw fail(`must be a string, not ${shown}`);
      if (spec.type === 'duration') {
        try {
          parseDuration(s);
        } catch (error) {
          throw fail((error as Error).message);
        }
        return s;
      }
      return expand(s);
    }
    case 'strings': {
      let list: unknown = value;
      if (text !== undefined) {
        // Gate's rule: empty → [], "[…]" → a JSON array, anything else → one element.
        if (text === '') list = [];
        else if (text.startsWith('[')) {
          try {
            list = JSON.parse(text);
          } catch {
            throw fail(`must be a JSON array of strings, not ${shown}`);
          }
        } else list = [text];
      }
      if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw fail(`must be a list of strings, not ${shown}`);
      return list.map(expand);
    }
    case 'tables': {
      if (!Array.isArray(value) || !value.every(isTable)) throw fail(`must be an array of tables ([[…]]), not ${shown}`);
      return value.map((t, i) => {
        const out: Record<string, string> = Object.fromEntries(spec.fields.map((f) => [f, '']));
        for (const [f, v] of Object.entries(t)) {
          if (!spec.fields.includes(f.toLowerCase())) throw fail(`element ${i}: unknown key ${JSON.stringify(f)} (known: ${spec.fields.join(', ')})`);
          if (typeof v !== 'string') throw fail(`element ${i}: ${f} must be a string, not ${describeValue(v)}`);
          out[f.toLowerCase()] = expand(v);
        }
        return out;
      });
    }
    case 'map':
      throw fail('must be a table of tables');
  }
}

/** Option text as a number, with TOML's number syntax (1_000, 0x10, 1e3). */
function numberFromText(text: string): unknown {
  try {
    return (toml().parse(`v = ${text}`) as Node).v;
  } catch {
    return undefined;
  }
}

function describeValue(v: unknown): string {
  if (v instanceof Date) return `the date ${v.toISOString()}`;
  if (Array.isArray(v)) return 'an array';
  if (isTable(v)) return 'a table';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v) ?? String(v);
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

export function stateHome(): string {
  return process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
}

export function configHome(): string {
  return process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
}

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
}

/** ${HOME} and ${XDG_*_HOME} (with their XDG defaults), as Gate expands them; other ${NAME}s from the environment. */
function expand(s: string): string {
  return s.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (whole, name: string) => {
    switch (name) {
      case 'HOME':
        return os.homedir();
      case 'XDG_CONFIG_HOME':
        return configHome();
      case 'XDG_STATE_HOME':
        return stateHome();
      case 'XDG_CACHE_HOME':
        return cacheHome();
      case 'XDG_DATA_HOME':
        return process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
      default:
        return process.env[name] ?? whole;
    }
  });
}

/** Durations read lately (a principal's time resolution is read at every instance's creation). */
const durations = new Map<string, number>();
const DURATIONS_KEPT = 256;

/** Go duration text (`10ms`, `1h30m`, `0`) in nanoseconds. */
export function parseDuration(s: string): number {
  const known = durations.get(s);
  if (known !== undefined) return known;
  const total = parseDurationText(s);
  if (durations.size < DURATIONS_KEPT) durations.set(s, total);
  return total;
}

function parseDurationText(s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (s === '0') return 0;
  let rest = s;
  let total = 0;
  if (rest === '') throw new ConfigError('invalid duration: ""');
  while (rest !== '') {
    const m = /^(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new ConfigError(`invalid duration: ${JSON.stringify(s)} (e.g. 10ms, 1h30m)`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** Every key with its type, current value and doc, for -h (Gate prints the same list). */
export function describe(schema: Schema, config: object): string[] {
  return Object.entries(schema).map(([name, spec]) => {
    const value = JSON.stringify(lookup(config as Node, name));
    return `  ${name} = ${value}  (${spec.type}) ${spec.doc}`;
  });
}

function listDir(dir: string, required: boolean): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (error) {
    if (required) throw new ConfigError(`${dir}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message}`);
    return [];
  }
}

function globPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.')}$`);
}
