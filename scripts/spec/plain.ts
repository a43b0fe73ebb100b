// The reference: modules straight on V8. Traps are mapped to Gate's causes
// by the engine's own mapping, so the plain run checks that mapping too.

import { trapCause } from '../../src/runtime/instance/trap.ts';
import { parseModule, type ModuleInfo } from '../../src/runtime/wasm/module.ts';
import { errorText, InstantiateFailure, type Handle, type Outcome, type Store } from './store.ts';
import type { Value } from './script.ts';
import { callWrapped, unwrapResults, wrapperArgs } from './values.ts';

interface PlainHandle extends Handle {
  instance: WebAssembly.Instance;
  info: ModuleInfo;
}

export function errorOutcome(error: unknown): Outcome {
  const cause = trapCause(error);
  if (cause !== undefined) return { kind: 'trap', cause, message: errorText(error) };
  return { kind: 'error', message: errorText(error) };
}

export function exportedFunction(info: ModuleInfo, field: string): number | undefined {
  return info.exports.find((e) => e.name === field && e.kind === 'func')?.index;
}

export class PlainStore implements Store<PlainHandle> {
  readonly mode = 'plain';

  async instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports): Promise<PlainHandle> {
    let module: WebAssembly.Module;
    try {
      module = new WebAssembly.Module(bytes);
    } catch (error) {
      throw new InstantiateFailure('invalid', errorText(error));
    }
    const info = parseModule(bytes);
    try {
      return { instance: new WebAssembly.Instance(module, imports), info, registered: false };
    } catch (error) {
      if (error instanceof WebAssembly.LinkError) throw new InstantiateFailure('link', errorText(error));
      const cause = trapCause(error);
      if (error instanceof WebAssembly.RuntimeError || cause !== undefined) throw new InstantiateFailure('trap', errorText(error), cause);
      throw new InstantiateFailure('error', errorText(error));
    }
  }

  async invoke(h: PlainHandle, field: string, args: readonly Value[]): Promise<Outcome> {
    const index = exportedFunction(h.info, field);
    const fn = h.instance.exports[field];
    if (index === undefined || typeof fn !== 'function') return { kind: 'error', message: `no exported function ${field}` };
    const sig = h.info.functionSignature(index);
    try {
      const raw = callWrapped(fn as (...a: unknown[]) => unknown, sig, wrapperArgs(args));
      return { kind: 'values', values: unwrapResults(sig, raw) };
    } catch (error) {
      return errorOutcome(error);
    }
  }

  get(h: PlainHandle, field: string): Outcome {
    return globalOutcome(h.instance.exports, field);
  }

  exports(h: PlainHandle): WebAssembly.ModuleImports {
    return h.instance.exports as WebAssembly.ModuleImports;
  }

  async refusal(bytes: Uint8Array<ArrayBuffer>): Promise<string | undefined> {
    try {
      new WebAssembly.Module(bytes);
      return undefined;
    } catch (error) {
      return errorText(error);
    }
  }
}

export function globalOutcome(exports: WebAssembly.Exports, field: string): Outcome {
  const g = exports[field];
  if (!(g instanceof WebAssembly.Global)) return { kind: 'error', message: `no exported global ${field}` };
  try {
    return { kind: 'values', values: [g.value] };
  } catch (error) {
    return { kind: 'error', message: errorText(error) };
  }
}
