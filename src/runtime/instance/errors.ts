// Errors of instances: those that end a run (each carries what the instance
// reports), and bad input from whoever launched the instance.

import { Cause } from './status.ts';

/** A program broke the ABI or a service protocol: KILLED, cause ABI_VIOLATION, public message. */
export class AbiViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbiViolation';
  }
}

/** A trap raised by host code on the program's behalf (e.g. an out-of-bounds pointer given to an import). */
export class Trap extends Error {
  readonly trapCause: Cause;
  constructor(cause: Cause) {
    super(`trap: ${cause}`);
    this.name = 'Trap';
    this.trapCause = cause;
  }
}

/** proc_exit: TERMINATED with result 0 (status 0) or 1 (anything else). */
export class Exit extends Error {
  readonly result: number;
  constructor(status: number) {
    super(`exit ${status}`);
    this.name = 'Exit';
    this.result = status === 0 ? 0 : 1;
  }
}

/** Bad input from whoever launched the instance (not the program's fault). */
export class InstanceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'InstanceError';
    this.code = code;
  }
}
