// Instance states and causes as Gate reports them (api.md §10.1). Names, not
// numbers, travel on the wire; the numbers are kept for snapshots and logs.

export const State = {
  RUNNING: 'RUNNING',
  SUSPENDED: 'SUSPENDED',
  HALTED: 'HALTED',
  TERMINATED: 'TERMINATED',
  KILLED: 'KILLED',
} as const;
export type State = (typeof State)[keyof typeof State];

export const Cause = {
  NORMAL: 'NORMAL',
  UNREACHABLE: 'UNREACHABLE',
  CALL_STACK_EXHAUSTED: 'CALL_STACK_EXHAUSTED',
  MEMORY_ACCESS_OUT_OF_BOUNDS: 'MEMORY_ACCESS_OUT_OF_BOUNDS',
  INDIRECT_CALL_INDEX_OUT_OF_BOUNDS: 'INDIRECT_CALL_INDEX_OUT_OF_BOUNDS',
  INDIRECT_CALL_SIGNATURE_MISMATCH: 'INDIRECT_CALL_SIGNATURE_MISMATCH',
  INTEGER_DIVIDE_BY_ZERO: 'INTEGER_DIVIDE_BY_ZERO',
  INTEGER_OVERFLOW: 'INTEGER_OVERFLOW',
  BREAKPOINT: 'BREAKPOINT',
  ABI_DEFICIENCY: 'ABI_DEFICIENCY',
  ABI_VIOLATION: 'ABI_VIOLATION',
  INTERNAL: 'INTERNAL',
} as const;
export type Cause = (typeof Cause)[keyof typeof Cause];

export const causeNumber: Record<Cause, number> = {
  NORMAL: 0,
  UNREACHABLE: 3,
  CALL_STACK_EXHAUSTED: 4,
  MEMORY_ACCESS_OUT_OF_BOUNDS: 5,
  INDIRECT_CALL_INDEX_OUT_OF_BOUNDS: 6,
  INDIRECT_CALL_SIGNATURE_MISMATCH: 7,
  INTEGER_DIVIDE_BY_ZERO: 8,
  INTEGER_OVERFLOW: 9,
  BREAKPOINT: 10,
  ABI_DEFICIENCY: 27,
  ABI_VIOLATION: 28,
  INTERNAL: 29,
};

/** The resource limit that ended a run, when one did (our extension). */
export type Limit = 'fuel' | 'time';

export interface Status {
  state: State;
  cause: Cause;
  /** Program result: 0 or 1 (proc_exit status != 0). */
  result: number;
  /** Public detail for abnormal ends. */
  error?: string;
  /** Set when the run was ended by a resource limit. */
  limit?: Limit;
}

/** Gate's JSON encoding: zero values omitted, names for enums. */
export function statusToJSON(s: Status): Record<string, string | number> {
  const out: Record<string, string | number> = { state: s.state };
  if (s.cause !== Cause.NORMAL) out.cause = s.cause;
  if (s.result !== 0) out.result = s.result;
  if (s.error) out.error = s.error;
  return out;
}
