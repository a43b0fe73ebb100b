// Query strings as Gate's handlers read them: each handler takes the
// parameters it understands, and anything left over is an error.

import { goQuote } from '../runtime/go-quote.ts';
import { badRequest, HttpError } from './errors.ts';

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

const UUID_CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_ANY = /^(urn:uuid:)?\{?([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})\}?$/;

/** Why an instance id is unacceptable, or undefined when it is a canonical UUID v4 (api.md §11.2). */
export function instanceIdError(id: string): string | undefined {
  const m = UUID_ANY.exec(id);
  const braced = id.startsWith('{') !== id.endsWith('}');
  if (!m || braced || (m[1] && id.includes('{'))) return 'instance id must be a UUID';
  const hex = m[2].replace(/-/g, '');
  if (hex.length !== 32) return 'instance id must be a UUID';
  const withHyphens = m[2].includes('-');
  if (m[2].split('-').length !== 1 && m[2].split('-').length !== 5) return 'instance id must be a UUID';
  const version = parseInt(hex[12], 16);
  const variant = parseInt(hex[16], 16);
  if (version !== 4) return 'instance UUID version must be 4';
  if ((variant & 0xc) !== 0x8) return 'instance UUID variant must be RFC 4122';
  if (id.startsWith('{')) return 'instance UUID must not be surrounded by brackets';
  if (m[1]) return 'instance UUID must not have namespace prefix';
  if (!withHyphens || !UUID_CANONICAL.test(id)) return 'instance UUID must use lower-case hex encoding';
  return undefined;
}

/** Why a module key is unacceptable (api.md §11.1). */
export function moduleKeyError(key: string): string | undefined {
  if (key.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(key)) return 'module hash must be hex-encoded';
  if (key !== key.toLowerCase()) return 'module hash must use lower-case hex encoding';
  return undefined;
}
