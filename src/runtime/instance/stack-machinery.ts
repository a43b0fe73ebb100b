// How an instance's wasm stack is taken down and put back: the part of an
// instance that depends on how its program was prepared (Binaryen's
// Asyncify, or our portable-stack rewrite). The instance decides when; the
// machinery does it.

/** The instance's side of a tick. */
export interface TickHost {
  /** Whether a slice is running (a tick from a call into the instance outside a run just goes on). */
  readonly executing: boolean;
  /**
   * Fuel ran out: account for it, enforce the limits (throwing ends the run)
   * and decide: a new grant to go on with, or stop the slice here.
   */
  onTick(): number | 'unwind';
  /** The stack is back where it stopped: grant fuel for the slice; returns the grant. */
  onRewound(): number;
}

/** A stack taken down, as the machinery keeps it between slices. */
export type SavedStack = unknown;

/**
 * An argument of the entry function saved with its stack, as bits: i32 a
 * number, i64 a bigint, f32 its bits as a (signed) number, f64 its bits as
 * a bigint, v128 [low, high] bigint halves, references as they are.
 */
export interface SavedArgument {
  type: string;
  value: unknown;
}

export interface StackMachinery {
  /** The imports the prepared program needs from the engine module (its memory excepted). */
  imports(host: TickHost): Record<string, WebAssembly.ImportValue>;
  /** The instance's exports, once instantiated. */
  bind(exports: WebAssembly.Exports): void;
  /**
   * Wrap an import that may take the stack down (a blocking ABI function):
   * `index` in the function index space, `params` its parameter types.
   */
  wrap(index: number, params: readonly string[], fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown;
  /** Whether the stack can be taken down now. */
  readonly canUnwind: boolean;
  /** Take the stack down from inside the wrapped import being called (it is called again on the way back). */
  unwindFromImport(): void;
  /** Whether a stack is being put back. */
  readonly rewinding: boolean;
  /**
   * Put a stack back: call before calling the export the stack belongs to
   * (whose parameter types are given); returns the arguments to call it with
   * when the stack holds them.
   */
  rewind(saved: SavedStack, paramTypes?: readonly string[]): readonly SavedArgument[] | undefined;
  /**
   * The export returned (threw = false) or threw: if the stack was taken
   * down, the saved stack; otherwise undefined (a real return or error).
   */
  unwound(thrown: unknown, threw: boolean): SavedStack | undefined;
  /** The call ended in a trap: back to normal, so that the instance's exports work. */
  reset(): void;
  /** Whether an error means the stack was too deep to save. */
  overflowed(error: unknown): boolean;
}
