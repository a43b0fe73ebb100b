// Query strings as Gate's handlers read them: each handler takes the
// parameters it understands, and anything left over is an error.

import { goQuote } from '../../runtime/go-quote.ts';
import { badRequest, HttpError } from '../api/errors.ts';

export class Query {
  private readonly params = new Map<string, string[]>();
  /** The raw query string was empty. */
  readonly empty: boolean;

  constructor(raw: string) {
    this.empty = raw === '';
    if (raw.includes(';')) throw badRequest('query string decode error');
    for (const part of raw.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = decode(eq < 0 ? part : part.slice(0, eq));
      const value = eq < 0 ? '' : decode(part.slice(eq + 1));
      const list = this.params.get(key);
      if (list) list.push(value);
      else this.params.set(key, [value]);
    }
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** All values of a parameter, removing it. */
  takeAll(name: string): string[] {
    const values = this.params.get(name) ?? [];
    this.params.delete(name);
    return values;
  }

  /** A single-valued parameter, removing it; given twice is an error. Empty value = not given. */
  takeOne(name: string): string | undefined {
    const values = this.takeAll(name);
    if (values.length > 1) throw badRequest('duplicate query parameter');
    return values[0] || undefined;
  }

  /** Remove one occurrence of a value (e.g. one action=pin); true when there was one. */
  takeValue(name: string, value: string): boolean {
    const values = this.params.get(name);
    const i = values?.indexOf(value) ?? -1;
    if (!values || i < 0) return false;
    values.splice(i, 1);
    if (values.length === 0) this.params.delete(name);
    return true;
  }

  get size(): number {
    return this.params.size;
  }

  /** Fail if anything is left. */
  done(): void {
    if (this.params.size > 0) throw badRequest('unexpected query parameters');
  }

  /** The entry function parameter, validated. */
  takeFunction(): string | undefined {
    const fn = this.takeOne('function');
    if (fn !== undefined && !/^[A-Za-z0-9\-._]{1,31}$/.test(fn)) {
      throw badRequest(`invalid function name: ${goQuote(fn)}`);
    }
    return fn;
  }

  /** The log parameter: only `*` is accepted (and has no effect on this server). */
  takeLog(): void {
    const log = this.takeOne('log');
    if (log !== undefined && log !== '*') {
      throw new HttpError(501, `unsupported log argument: ${goQuote(log)}`);
    }
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw badRequest('query string decode error');
  }
}
