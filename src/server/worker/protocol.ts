// Messages between the WorkerExecutor (main thread) and its worker threads.
// Everything here must survive structured cloning: plain data, typed arrays,
// WebAssembly.Module (V8 shares compiled code between threads), MessagePort.

import type { MessagePort } from 'node:worker_threads';
import type { ExecErrorKind, ProgramFacts } from '../executor.ts';
import type { PreparedModule } from '../../runtime/prepare/prepared.ts';
import type { Status } from '../../runtime/instance/status.ts';
import type { ServiceContext } from '../../runtime/service/service.ts';

/** Bytes one side may have in flight on a connection, per direction, before the other side acknowledges them. */
export const STREAM_WINDOW = 256 * 1024;
/** Largest data message on a connection (bigger client chunks are split). */
export const STREAM_CHUNK = 64 * 1024;

/** How a worker thread is set up (its workerData). */
export interface WorkerSetup {
  /** instances: runs program instances; prepare: instruments modules (slow, so kept off the instance threads). */
  role: 'instances' | 'prepare';
  /** ModuleCache directory (null: memory only). */
  cacheDir: string | null;
  /** A module exporting createRegistry(options) → Registry (or a promise of one), for server-wide services. */
  servicesModule?: string;
  servicesOptions?: unknown;
  /** Set only by tests: lets the main thread block this thread (Int32Array over a SharedArrayBuffer). */
  testBlock?: SharedArrayBuffer;
}

/** A failure as it crosses the thread boundary (Error objects lose their kind and code when cloned). */
export interface ErrorInfo {
  kind: ExecErrorKind;
  message: string;
}

/** A prepared, compiled program, made once by the preparer and handed to instance workers. */
export interface ProgramShare {
  /** sha256 of the program and the memory limit: identifies the compiled form. */
  key: string;
  program: Uint8Array;
  prepared: PreparedModule;
  module: WebAssembly.Module;
  maxMemoryPages: number;
}

export interface CreateRequest {
  op: 'create';
  req: number;
  id: number;
  /** The compiled program, unless this worker already has it. */
  share: ProgramShare | null;
  /** The program's key; null for a snapshot whose program the main thread does not know yet. */
  key: string | null;
  /** Snapshot module to restore, or null for a fresh instance of the shared program. */
  snapshot: Uint8Array | null;
  function?: string;
  context: ServiceContext;
  maxMemoryPages: number;
  timeLimit?: number;
  timeResolution?: number;
  debug: boolean;
}

/** Main thread → worker. */
export type ToWorker =
  | { op: 'ping'; seq: number }
  | { op: 'prepare'; req: number; bytes: Uint8Array; maxMemoryPages: number }
  | CreateRequest
  | { op: 'run'; id: number; function?: string }
  | { op: 'suspend'; id: number }
  | { op: 'kill'; id: number }
  | { op: 'release'; id: number }
  | { op: 'snapshot'; req: number; id: number }
  | { op: 'inspect'; req: number; id: number }
  | { op: 'connect'; id: number; port: MessagePort; input: boolean; output: boolean }
  | { op: 'block' };

export interface PrepareReply {
  key: string;
  /** Null when this preparer has sent the same program before (the main thread keeps every one). */
  share: ProgramShare | null;
  facts: ProgramFacts;
}

/** The instance exists, or (for a snapshot) the worker lacks its program and names it. */
export type CreateReply = { status: Status; memoryLimit: number } | { need: string };

export interface InspectReply {
  memory: Uint8Array;
  globals: [number, number | bigint][];
}

/** Worker → main thread. */
export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'pong'; seq: number }
  | { ev: 'reply'; req: number; value: unknown }
  | { ev: 'fail'; req: number; error: ErrorInfo }
  | { ev: 'stopped'; id: number; status: Status }
  | { ev: 'run-error'; id: number; error: ErrorInfo }
  | { ev: 'debug'; id: number; chunk: Uint8Array };

/** Main thread → worker on a connection's port. */
export type ToProgram =
  | { t: 'in-data'; chunk: Uint8Array }
  | { t: 'in-end' }
  | { t: 'in-error'; message: string }
  | { t: 'out-ack'; n: number }
  | { t: 'out-closed' }
  | { t: 'out-failed'; message: string }
  | { t: 'abort'; message: string };

/** Worker → main thread on a connection's port. */
export type FromProgram =
  | { t: 'join' }
  | { t: 'done'; joined: boolean }
  | { t: 'in-ack'; n: number }
  | { t: 'in-cancel'; message: string }
  | { t: 'out-data'; chunk: Uint8Array }
  | { t: 'out-end' }
  | { t: 'out-abort'; message: string };

/** A copy of bytes that owns its whole buffer, so that the buffer can be transferred. */
export function ownedCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes as Uint8Array<ArrayBuffer>;
  }
  return bytes.slice() as Uint8Array<ArrayBuffer>;
}

export function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'aborted' : String(reason);
}
