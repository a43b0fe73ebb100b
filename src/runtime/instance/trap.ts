// Map what V8 throws out of a wasm call to Gate's trap causes (abi.md §7.2).
// V8's messages are not a stable interface: the tests trigger every case so
// that a Node upgrade that changes them fails loudly.

import { Cause } from './status.ts';

const runtimeErrorCauses: Record<string, Cause> = {
  unreachable: Cause.UNREACHABLE,
  'memory access out of bounds': Cause.MEMORY_ACCESS_OUT_OF_BOUNDS,
  'divide by zero': Cause.INTEGER_DIVIDE_BY_ZERO,
  'remainder by zero': Cause.INTEGER_DIVIDE_BY_ZERO,
  'divide result unrepresentable': Cause.INTEGER_OVERFLOW,
  'float unrepresentable in integer range': Cause.INTEGER_OVERFLOW,
  'table index is out of bounds': Cause.INDIRECT_CALL_INDEX_OUT_OF_BOUNDS,
  // table.init past the end of its segment or table (the spec's "out of bounds table access").
  'element segment out of bounds': Cause.INDIRECT_CALL_INDEX_OUT_OF_BOUNDS,
  'null function or function signature mismatch': Cause.INDIRECT_CALL_SIGNATURE_MISMATCH,
};

/** The cause of a trap thrown by V8, or undefined when the error is not a trap. */
export function trapCause(error: unknown): Cause | undefined {
  if (error instanceof WebAssembly.RuntimeError) return runtimeErrorCauses[error.message];
  if (error instanceof RangeError && error.message === 'Maximum call stack size exceeded') {
    return Cause.CALL_STACK_EXHAUSTED;
  }
  return undefined;
}
