// What the spec scripts expect a trap to say, as Gate's trap causes. The
// runner asserts that every trap has the cause its text maps to, in every
// mode: the plain run checks the engine's own mapping of V8's errors
// (src/runtime/instance/trap.ts), the other runs the status the instance
// reports. Gate has fewer causes than the spec has messages: a float that
// cannot convert is an integer overflow, and table accesses out of bounds
// (not only call_indirect's) are indirect call index errors.

import { Cause } from '../../src/runtime/instance/status.ts';

export const TRAP_CAUSES: Readonly<Record<string, Cause>> = {
  unreachable: Cause.UNREACHABLE,
  'call stack exhausted': Cause.CALL_STACK_EXHAUSTED,
  'out of bounds memory access': Cause.MEMORY_ACCESS_OUT_OF_BOUNDS,
  'integer divide by zero': Cause.INTEGER_DIVIDE_BY_ZERO,
  'integer overflow': Cause.INTEGER_OVERFLOW,
  'invalid conversion to integer': Cause.INTEGER_OVERFLOW,
  'undefined element': Cause.INDIRECT_CALL_INDEX_OUT_OF_BOUNDS,
  'out of bounds table access': Cause.INDIRECT_CALL_INDEX_OUT_OF_BOUNDS,
  'uninitialized element': Cause.INDIRECT_CALL_SIGNATURE_MISMATCH,
  'indirect call type mismatch': Cause.INDIRECT_CALL_SIGNATURE_MISMATCH,
};

/** The cause a script's trap text maps to; texts may carry a suffix ("uninitialized element 2"). */
export function expectedCause(text: string): Cause | undefined {
  if (Object.hasOwn(TRAP_CAUSES, text)) return TRAP_CAUSES[text];
  for (const [prefix, cause] of Object.entries(TRAP_CAUSES)) if (text.startsWith(`${prefix} `)) return cause;
  return undefined;
}
