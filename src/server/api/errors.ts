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
