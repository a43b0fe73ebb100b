// Programs for the bench modules: the committed guest examples, the bench's
// own WAT fixtures (bench/guest/, compiled with Binaryen's text parser when
// the bench runs, so no wat2wasm is needed), and the plumbing to run them
// through the host layer or straight on V8.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProgramInstance } from '../src/host/program-instance.ts';
import type { CompiledModule } from '../src/runtime/instance/instance.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import { loadBinaryen } from '../tools/binaryen.ts';
import { Registry } from '../src/services/index.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A committed guest program, e.g. guest("examples/hash.wasm"). */
export function guest(file: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(root, 'guest', file)));
}

/** A bench WAT fixture (bench/guest/NAME.wat) as a binary module. */
export async function benchWat(name: string): Promise<Uint8Array> {
  const text = readFileSync(path.join(root, 'bench', 'guest', `${name}.wat`), 'utf8');
  const b = await loadBinaryen();
  const m = b.parseText(text);
  try {
    if (!m.validate()) throw new Error(`bench/guest/${name}.wat does not validate`);
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

const registry = new Registry();
let instanceCounter = 0;

export interface StartOptions {
  function?: string;
  /** Collect the debug log (off: the log is disabled, as for a server instance without --debug). */
  debug?: (chunk: Uint8Array) => void;
}

/** A ProgramInstance of a compiled module, with the services a local run has (origin, catalog). */
export function programInstance(engine: Engine, compiled: CompiledModule, options: StartOptions = {}): ProgramInstance {
  return new ProgramInstance({
    engine,
    compiled,
    registry,
    context: { instance: `bench-${++instanceCounter}`, scope: [] },
    function: options.function,
    debug: options.debug,
  });
}
