// A small TOML reader for configuration files: tables, arrays of tables,
// dotted keys, strings, numbers, booleans and (possibly multi-line) arrays.
// Inline tables and dates are not supported; configuration doesn't need them.

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

export class TomlError extends Error {}

export function parseToml(text: string): TomlTable {
  const root: TomlTable = {};
  let table = root;
  const p = new Parser(text);
  for (;;) {
    p.skipBlank();
    if (p.eof()) break;
    if (p.peek() === '[') {
      const array = p.text.startsWith('[[', p.pos);
      p.pos += array ? 2 : 1;
      const keys = p.keyPath();
      p.expect(array ? ']]' : ']');
      table = array ? appendTable(root, keys, p) : openTable(root, keys, p);
    } else {
      const keys = p.keyPath();
      p.expect('=');
      const value = p.value();
      assign(table, keys, value, p);
    }
    p.endOfLine();
  }
  return root;
}

function openTable(root: TomlTable, keys: string[], p: Parser): TomlTable {
  let t = root;
  for (const k of keys) {
    const next = t[k];
    if (next === undefined) t = t[k] = {};
    else if (Array.isArray(next) && next.length > 0 && isTable(next[next.length - 1])) t = next[next.length - 1] as TomlTable;
    else if (isTable(next)) t = next;
    else throw p.error(`key ${k} is not a table`);
  }
  return t;
}

function appendTable(root: TomlTable, keys: string[], p: Parser): TomlTable {
  const parent = openTable(root, keys.slice(0, -1), p);
  const last = keys[keys.length - 1];
  const list = (parent[last] ??= []);
  if (!Array.isArray(list)) throw p.error(`key ${last} is not an array of tables`);
  const t: TomlTable = {};
  list.push(t);
  return t;
}

function assign(table: TomlTable, keys: string[], value: TomlValue, p: Parser): void {
  const t = openTable(table, keys.slice(0, -1), p);
  const last = keys[keys.length - 1];
  if (last in t) throw p.error(`duplicate key ${last}`);
  t[last] = value;
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Parser {
  readonly text: string;
  pos = 0;
  constructor(text: string) {
    this.text = text;
  }

  eof(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos];
  }

  error(message: string): TomlError {
    const line = this.text.slice(0, this.pos).split('\n').length;
    return new TomlError(`line ${line}: ${message}`);
  }

  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  /** Whitespace, newlines and comments. */
  skipBlank(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') this.pos++;
      else if (c === '#') while (!this.eof() && this.peek() !== '\n') this.pos++;
      else return;
    }
  }

  endOfLine(): void {
    this.skipSpace();
    if (this.peek() === '#') while (!this.eof() && this.peek() !== '\n') this.pos++;
    if (this.peek() === '\r') this.pos++;
    if (!this.eof() && this.peek() !== '\n') throw this.error('expected end of line');
  }

  expect(s: string): void {
    this.skipSpace();
    if (!this.text.startsWith(s, this.pos)) throw this.error(`expected ${s}`);
    this.pos += s.length;
  }

  keyPath(): string[] {
    const keys: string[] = [];
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c === '"' || c === "'") keys.push(this.string());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.text.slice(this.pos));
        if (!m) throw this.error('expected a key');
        keys.push(m[0]);
        this.pos += m[0].length;
      }
      this.skipSpace();
      if (this.peek() !== '.') return keys;
      this.pos++;
    }
  }

  value(): TomlValue {
    this.skipSpace();
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (c === '[') return this.array();
    const m = /^[^\s,\]#]+/.exec(this.text.slice(this.pos));
    if (!m) throw this.error('expected a value');
    this.pos += m[0].length;
    const word = m[0];
    if (word === 'true') return true;
    if (word === 'false') return false;
    const n = Number(word.replace(/_/g, ''));
    if (/^[+-]?(\d[\d_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$/.test(word)) {
      return word.startsWith('0o') ? parseInt(word.slice(2).replace(/_/g, ''), 8) : n;
    }
    if (/^[+-]?\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?$/.test(word)) return n;
    throw this.error(`unsupported value ${word}`);
  }

  array(): TomlValue[] {
    this.pos++;
    const out: TomlValue[] = [];
    for (;;) {
      this.skipBlank();
      if (this.peek() === ']') {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skipBlank();
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== ']') throw this.error('expected , or ]');
    }
  }

  string(): string {
    const quote = this.peek();
    const multi = this.text.startsWith(quote.repeat(3), this.pos);
    const delim = multi ? quote.repeat(3) : quote;
    this.pos += delim.length;
    if (multi && this.peek() === '\n') this.pos++;
    let out = '';
    for (;;) {
      if (this.eof()) throw this.error('unterminated string');
      if (this.text.startsWith(delim, this.pos)) {
        this.pos += delim.length;
        return out;
      }
      const c = this.text[this.pos++];
      if (c === '\n' && !multi) throw this.error('newline in string');
      if (c === '\\' && quote === '"') out += this.escape();
      else out += c;
    }
  }

  private escape(): string {
    const c = this.text[this.pos++];
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };
    if (c in simple) return simple[c];
    if (c === 'u' || c === 'U') {
      const len = c === 'u' ? 4 : 8;
      const hex = this.text.slice(this.pos, this.pos + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) throw this.error('bad unicode escape');
      this.pos += len;
      return String.fromCodePoint(parseInt(hex, 16));
    }
    throw this.error(`bad escape \\${c}`);
  }
}
