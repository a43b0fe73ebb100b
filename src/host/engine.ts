// The engine for this Node thread: slices are scheduled with setImmediate so
// that I/O callbacks run between them.

import { Engine, type EngineOptions } from '../runtime/instance/engine.ts';

let shared: Engine | undefined;

export function nodeEngine(options: EngineOptions = {}): Engine {
  return new Engine({ schedule: (fn) => setImmediate(fn), ...options });
}

/** One engine per thread is enough: it multiplexes all instances. */
export function sharedEngine(): Engine {
  shared ??= nodeEngine();
  return shared;
}
