// The error every preparation step throws for a module it does not accept.

/** The module is not acceptable; the message says why. */
export class PrepareError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'PrepareError';
    this.code = code;
  }
}
