// The network source of the request being handled, available to the code it
// calls without passing it through every layer: preparation is shared fairly
// between owners, and anonymous callers are told apart by their source.

import { AsyncLocalStorage } from 'node:async_hooks';

const storage = new AsyncLocalStorage<string>();

/** Run fn (and everything it starts) as handling a request from `source`. */
export function withRequestSource<T>(source: string | undefined, fn: () => T): T {
  return storage.run(source ?? 'unknown', fn);
}

/** The source address of the request being handled, if any. */
export function requestSource(): string | undefined {
  return storage.getStore();
}

/** Who owns work done for a caller: the principal, or anonymous callers by their source. */
export function ownerOf(principal: string | undefined): string {
  return principal ?? `anonymous@${requestSource() ?? 'unknown'}`;
}
