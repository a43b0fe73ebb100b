// binaryen.js for development tools (the fuzzer's module generator and
// reducer, the bench's WAT fixtures and synthetic programs): loaded on first
// use, since loading it costs ~0.3 s. The runtime does not use it.

import type * as BinaryenModule from 'binaryen';

export type Binaryen = typeof BinaryenModule.default;

let binaryenPromise: Promise<Binaryen> | undefined;

export function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= import('binaryen').then((m) => m.default);
  return binaryenPromise;
}
