// Shrink a module on which plain V8 and our engine disagree, keeping the
// disagreement. The npm build of wasm-reduce cannot run a test command (its
// process spawning is not available under Emscripten), so this is a small
// reducer of our own over Binaryen's API: drop exports, then empty function
// bodies, then let Binaryen remove what is no longer used, keeping each step
// only when the mismatch survives it.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBinaryen } from '../binaryen.ts';
import { difference, exposeState, newEngine, runEngine, runPlain, type Plan } from './differential.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURES = path.resolve(here, '../../test/fixtures/fuzz');

const REDUCE_BUDGET_MS = 120_000;

/** The mismatch message for a module under a plan, or undefined when both runs agree. */
export async function mismatchOf(raw: Uint8Array, plan: Plan): Promise<string | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = exposeState(raw);
    if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) return undefined;
  } catch {
    return undefined;
  }
  const stats = { suspensions: 0, restores: 0, unsnapshottable: new Map<string, number>() };
  const ours = await runEngine(bytes, plan, newEngine(), stats);
  if (ours.events[0]?.startsWith('prepare: ')) return `refused: ${ours.events[0]}`;
  return difference(runPlain(bytes), ours);
}

type Edit = (m: import('binaryen').default.Module) => boolean;

async function edited(raw: Uint8Array, edit: Edit): Promise<Uint8Array | undefined> {
  const b = await loadBinaryen();
  const m = b.readBinary(raw);
  try {
    m.setFeatures(b.Features.All);
    if (!edit(m)) return undefined;
    return m.emitBinary();
  } catch {
    return undefined;
  } finally {
    m.dispose();
  }
}

/**
 * Reduce the module in `file` and save it with its plan as a regression
 * fixture; returns the fixture's path, or undefined when the mismatch did not
 * reproduce.
 */
export async function reduceMismatch(
  file: string,
  plan: Plan,
  log: (line: string) => void,
  fixtures: string = FIXTURES,
): Promise<string | undefined> {
  const b = await loadBinaryen();
  let current: Uint8Array = new Uint8Array(readFileSync(file));
  const original = await mismatchOf(current, plan);
  if (!original) {
    log(`  ${path.basename(file)}: the mismatch does not reproduce on its own`);
    return undefined;
  }
  const deadline = Date.now() + REDUCE_BUDGET_MS;
  const attempt = async (edit: Edit): Promise<boolean> => {
    if (Date.now() > deadline) return false;
    const candidate = await edited(current, edit);
    if (!candidate || candidate.byteLength >= current.byteLength) return false;
    if (!(await mismatchOf(candidate, plan))) return false;
    current = candidate;
    return true;
  };

  const names = (m: import('binaryen').default.Module, kind: 'export' | 'function'): string[] => {
    const out: string[] = [];
    if (kind === 'export') {
      for (let i = 0; i < m.getNumExports(); i++) out.push(b.getExportInfo(m.getExportByIndex(i)).name);
    } else {
      for (let i = 0; i < m.getNumFunctions(); i++) out.push(b.getFunctionInfo(m.getFunctionByIndex(i)).name);
    }
    return out;
  };
  const list = async (kind: 'export' | 'function'): Promise<string[]> => {
    const m = b.readBinary(current);
    try {
      return names(m, kind);
    } finally {
      m.dispose();
    }
  };

  for (const name of (await list('export')).reverse()) {
    await attempt((m) => {
      m.removeExport(name);
      return true;
    });
  }
  for (const name of await list('function')) {
    await attempt((m) => {
      const f = m.getFunction(name);
      const info = b.getFunctionInfo(f);
      if (info.module) return false; // an import has no body
      // Binaryen's typings put Function under Module; at run time it is on the library.
      (b as unknown as { Function: { setBody(func: number, body: number): void } }).Function.setBody(f, m.unreachable());
      return true;
    });
  }
  await attempt((m) => {
    m.runPasses(['remove-unused-module-elements', 'vacuum']);
    return true;
  });

  const message = (await mismatchOf(current, plan)) ?? original;
  mkdirSync(fixtures, { recursive: true });
  const name = path.basename(file, '.wasm');
  const out = path.join(fixtures, `${name}.wasm`);
  writeFileSync(out, current);
  writeFileSync(path.join(fixtures, `${name}.json`), JSON.stringify({ plan, message }, null, 2) + '\n');
  return out;
}
