// Errors that reach a client: an HTTP status plus one line of public text.
// Anything else thrown by a handler is an internal error whose details are
// only logged.

/** Gate's fail types of client errors (its event.proto), logged with FAIL_REQUEST events. */
export type FailType =
  | 'UNSUPPORTED'
  | 'CLIENT_DENIED'
  | 'RESOURCE_LIMIT'
  | 'MODULE_NOT_FOUND'
  | 'MODULE_HASH_MISMATCH'
  | 'MODULE_ERROR'
  | 'FUNCTION_NOT_FOUND'
  | 'INSTANCE_NOT_FOUND'
  | 'INSTANCE_ID_EXISTS'
  | 'INSTANCE_STATUS';

export class HttpError extends Error {
  readonly status: number;
  /** Public text; empty means the status alone (Gate's empty-body answers). */
  readonly text: string;
  readonly headers: Record<string, string>;
  /** What kind of client error this is, for the log; unset for malformed requests (FAIL_PROTOCOL). */
  fail: FailType | undefined;

  constructor(status: number, text: string, headers: Record<string, string> = {}) {
    super(text || `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.text = text;
    this.headers = headers;
  }

  /** This error, logged as a FAIL_REQUEST of that type. */
  failing(type: FailType): this {
    this.fail = type;
    return this;
  }
}

export const badRequest = (text: string): HttpError => new HttpError(400, text);
export const notFound = (text: string): HttpError => new HttpError(404, text);
export const conflict = (text: string): HttpError => new HttpError(409, text).failing('INSTANCE_STATUS');
export const unsupportedAction = (): HttpError =>
  new HttpError(501, 'unsupported action', { 'Cache-Control': 'public, max-age=3600' }).failing('UNSUPPORTED');

export const moduleNotFound = (): HttpError => notFound('module not found').failing('MODULE_NOT_FOUND');
export const instanceNotFound = (): HttpError => notFound('instance not found').failing('INSTANCE_NOT_FOUND');

/** A per-principal quota was hit; the message names the setting (Gate's RESOURCE_LIMIT is a 400). */
export function limitExceeded(what: string, key: string, value: number): HttpError {
  return badRequest(`${what} limit exceeded (${key} = ${value})`).failing('RESOURCE_LIMIT');
}

/** Public text for a status that has no message of its own. */
export function defaultText(status: number): string {
  return status === 500 ? 'internal error' : 'unknown error';
}

/** Quote a string the way Go's %q does: the error texts clients compare against use it. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0xfffd && ch !== '\ufffd') out += '\\ufffd';
    else if ((c >= 0x80 && c < 0xa0) || (c >= 0xd800 && c < 0xe000)) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
