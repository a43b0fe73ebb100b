// Counting what mutated inputs end in. Every input must end in either
// acceptance or an error that says what is wrong and carries a code (ERR_*);
// anything else (a TypeError, a RangeError, an internal error status, a hang)
// is a crash.

export interface MutationCounts {
  inputs: number;
  /** Outcome → count: "accepted", "ERR_...", "status KILLED ABI_VIOLATION", ... */
  outcomes: Map<string, number>;
  crashes: { input: string; what: string; saved?: string }[];
}

export function newMutationCounts(): MutationCounts {
  return { inputs: 0, outcomes: new Map(), crashes: [] };
}

export function count(counts: MutationCounts, outcome: string): void {
  counts.outcomes.set(outcome, (counts.outcomes.get(outcome) ?? 0) + 1);
}

/** The code of a clear error, or undefined when the error is not one. */
export function clearErrorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^ERR_[A-Z0-9_]+$/.test(code)) return undefined;
  if (error.message.length === 0) return undefined;
  return code;
}

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}${error.stack ? `\n${error.stack.split('\n').slice(1, 4).join('\n')}` : ''}`;
  return String(error);
}

/** Bound a promise in time: a hang is reported, not waited out. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class HangError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HangError';
  }
}
