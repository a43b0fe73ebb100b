// Stack machinery of programs prepared with Binaryen's Asyncify (engine v1):
// the stack is unwound into the engine's Asyncify memory by returning
// through every frame, and rewound by calling the entry export again with
// Asyncify in rewind state. The unwound data is copied out to the instance.

import { FUEL_GRANT } from './fuel-meter.ts';
import type { SavedStack, StackMachinery, TickHost } from './stack-machinery.ts';
import { NO_UNWIND_EXPORT } from '../prepare/names.ts';

interface AsyncifyExports {
  asyncify_start_unwind(addr: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(addr: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
}

const UNWINDING = 1;
const REWINDING = 2;

export class AsyncifyStack implements StackMachinery {
  private readonly memory: WebAssembly.Memory;
  private host: TickHost | undefined;
  private asyncify: AsyncifyExports | undefined;
  /** How many functions that Asyncify cannot unwind are on the stack (absent when the program has none). */
  private noUnwind: WebAssembly.Global | undefined;
  private rewindingNow = false;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
  }

  get rewinding(): boolean {
    return this.rewindingNow;
  }

  get canUnwind(): boolean {
    return !this.noUnwind || (this.noUnwind.value as number) === 0;
  }

  imports(host: TickHost): Record<string, WebAssembly.ImportValue> {
    this.host = host;
    return { tick: () => this.tick(), asyncify_memory: this.memory };
  }

  bind(exports: WebAssembly.Exports): void {
    this.asyncify = exports as unknown as AsyncifyExports;
    this.noUnwind = exports[NO_UNWIND_EXPORT] as WebAssembly.Global | undefined;
  }

  private tick(): number {
    const host = this.host!;
    if (!host.executing) return FUEL_GRANT;
    if (this.rewindingNow) {
      this.endRewind();
      return host.onRewound();
    }
    const decision = host.onTick();
    if (decision !== 'unwind') return decision;
    this.startUnwind();
    return 0;
  }

  wrap(_index: number, _params: readonly string[], fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
    // Called again while the stack is rewound: the rewind ends here.
    return (...args: unknown[]) => {
      if (this.rewindingNow) {
        this.endRewind();
        this.host!.onRewound();
      }
      return fn(...args);
    };
  }

  unwindFromImport(): void {
    this.startUnwind();
  }

  private startUnwind(): void {
    const view = new DataView(this.memory.buffer);
    view.setUint32(0, 8, true);
    view.setUint32(4, this.memory.buffer.byteLength, true);
    this.asyncify!.asyncify_start_unwind(0);
  }

  private endRewind(): void {
    if (this.rewindingNow) {
      this.rewindingNow = false;
      this.asyncify!.asyncify_stop_rewind();
    }
  }

  rewind(saved: SavedStack): undefined {
    const stack = saved as Uint8Array;
    const buffer = this.memory.buffer;
    new Uint8Array(buffer).set(stack, 8);
    const view = new DataView(buffer);
    // Rewinding reads the buffer backwards from where the unwind left it.
    view.setUint32(0, 8 + stack.byteLength, true);
    view.setUint32(4, buffer.byteLength, true);
    this.rewindingNow = true;
    this.asyncify!.asyncify_start_rewind(0);
    return undefined;
  }

  unwound(_thrown: unknown, threw: boolean): SavedStack | undefined {
    if (threw || this.asyncify?.asyncify_get_state() !== UNWINDING) return undefined;
    this.asyncify.asyncify_stop_unwind();
    const buffer = this.memory.buffer;
    const end = new DataView(buffer).getUint32(0, true);
    return new Uint8Array(buffer, 8, end - 8).slice();
  }

  reset(): void {
    this.rewindingNow = false;
    const asyncify = this.asyncify;
    if (!asyncify) return;
    const state = asyncify.asyncify_get_state();
    if (state === UNWINDING) asyncify.asyncify_stop_unwind();
    else if (state === REWINDING) asyncify.asyncify_stop_rewind();
  }

  overflowed(error: unknown): boolean {
    // Asyncify traps (unreachable) when its buffer overflows while unwinding.
    return error instanceof WebAssembly.RuntimeError && this.asyncify?.asyncify_get_state() === UNWINDING && /unreachable/i.test(error.message);
  }

  /** Fresh call: a trap may have left the no-unwind count up. */
  clearNoUnwind(): void {
    if (this.noUnwind) this.noUnwind.value = 0;
  }
}
