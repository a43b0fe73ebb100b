// What a mode must do to run a script: instantiate modules, call exports,
// read globals, refuse invalid modules. The plain store does it straight on
// V8; the engine store through Gate's preparation and Instance.

import type { Cause } from '../../src/runtime/instance/status.ts';
import type { Value } from './script.ts';

export type ModeName = 'plain' | 'prepared' | 'preempted' | 'restored';
export const MODES: readonly ModeName[] = ['plain', 'prepared', 'preempted', 'restored'];

export type Outcome =
  | { kind: 'values'; values: unknown[]; skip?: string }
  | { kind: 'trap'; cause: Cause; message: string; skip?: string }
  | { kind: 'error'; message: string; skip?: string };

/** Why a module did not become an instance. */
export type FailureStage = 'invalid' | 'prepare' | 'link' | 'trap' | 'error';

export class InstantiateFailure extends Error {
  readonly stage: FailureStage;
  readonly trapCause?: Cause;
  constructor(stage: FailureStage, message: string, cause?: Cause) {
    super(message);
    this.name = 'InstantiateFailure';
    this.stage = stage;
    this.trapCause = cause;
  }
}

/** Something a store made from a module; opaque to the script runner. */
export interface Handle {
  /** Set when the module's exports have been registered for other modules to import. */
  registered: boolean;
}

export interface Store<H extends Handle = Handle> {
  readonly mode: ModeName;
  /** Instantiate (and run the start function); throws InstantiateFailure. */
  instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports): Promise<H>;
  invoke(h: H, field: string, args: readonly Value[]): Promise<Outcome>;
  get(h: H, field: string): Outcome;
  /** The exports other modules import when the module is registered. */
  exports(h: H): WebAssembly.ModuleImports;
  /** Why the module is refused, or undefined when it is accepted. */
  refusal(bytes: Uint8Array<ArrayBuffer>): Promise<string | undefined>;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}
