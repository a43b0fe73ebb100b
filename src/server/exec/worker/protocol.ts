// Messages between the WorkerExecutor (the server's process) and its worker
// processes, over each child's IPC channel with V8 serialization: plain data
// and typed arrays. Client connections travel as ports multiplexed on the
// same channel (ports.ts).

import type { ExecErrorKind, HibernationReport, ProgramFacts } from '../executor.ts';
import type { PortEnvelope } from './ports.ts';
import type { PreparedModule } from '../../../runtime/prepare/prepared.ts';
import type { Status } from '../../../runtime/instance/status.ts';
import type { ServiceContext } from '../../../runtime/service/service.ts';

/**
 * The worker's file descriptor of the pipe on which it tells whose slice it
 * is in: int32 records, an instance id or -1 (idle), written synchronously
 * (see entry.ts).
 */
export const SLICE_FD = 4;

/** Bytes one side may have in flight on a connection, per direction, before the other side acknowledges them. */
export const STREAM_WINDOW = 256 * 1024;
/** Largest data message on a connection (bigger client chunks are split). */
export const STREAM_CHUNK = 64 * 1024;

/** How a worker process is set up (its first message). */
export interface WorkerSetup {
  /** instances: runs program instances; prepare: instruments modules (slow, so kept off the instance workers). */
  role: 'instances' | 'prepare';
  /** ModuleCache directory (null: memory only). */
  cacheDir: string | null;
  /** Bytes the ModuleCache directory is kept below (preparers). */
  cacheBytes?: number;
  /** A module exporting createRegistry(options) → Registry (or a promise of one), for server-wide services. */
  servicesModule?: string;
  servicesOptions?: unknown;
  /** Set only by tests: the worker obeys { op: 'block' } by blocking for good, as a runaway would. */
  testHooks?: boolean;
  /** BroadcastChannels to join across worker processes (the peer service's hubs meet on one). */
  relayChannels?: string[];
  /** Instances: live ones (holding a memory) at most, and the setting to name when that is not enough. */
  memories?: { capacity: number; key: string; wait?: number };
  /** Instances: hibernate those that wait this long (snapshots go to the data directory's module files). */
  hibernation?: { moduleDir: string; idleMs: number };
}

/** A failure as it crosses the process boundary (Error objects lose their kind and code when cloned). */
export interface ErrorInfo {
  kind: ExecErrorKind;
  message: string;
}

/** A prepared program, made once by a preparer and handed to the instance workers, which compile it. */
export interface ProgramShare {
  /** sha256 of the program and the memory limit: identifies the prepared form. */
  key: string;
  program: Uint8Array;
  prepared: PreparedModule;
  maxMemoryPages: number;
}

export interface CreateRequest {
  op: 'create';
  req: number;
  id: number;
  /** The prepared program, unless this worker already has it. */
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
  /** It may hibernate (a persistent instance: its snapshots become its checkpoints). */
  hibernate: boolean;
  /**
   * Instead of a new instance, one whose run hibernated waiting, dropped
   * (its checkpoint, a module file): it stays so until something needs it.
   */
  dormant?: { checkpoint: string; wakeAt: number | null };
}

/** Server → worker. */
export type ToWorker =
  | { op: 'setup'; setup: WorkerSetup }
  | { op: 'ping'; seq: number }
  | { op: 'prepare'; req: number; bytes: Uint8Array; maxMemoryPages: number }
  | CreateRequest
  | { op: 'run'; id: number; function?: string }
  | { op: 'suspend'; id: number }
  | { op: 'kill'; id: number }
  | { op: 'release'; id: number }
  | { op: 'snapshot'; req: number; id: number }
  | { op: 'inspect'; req: number; id: number }
  | { op: 'connect'; id: number; port: number; input: boolean; output: boolean }
  | ({ op: 'port' } & PortEnvelope)
  | { op: 'forget'; key: string }
  | { op: 'broadcast'; channel: string; data: unknown }
  | { op: 'block'; id?: number; how: 'loop' | 'heap' }
  /** The server is closing: wake no hibernated instance any more; the reply lists them (ids). */
  | { op: 'freeze'; req: number };

export interface PrepareReply {
  key: string;
  share: ProgramShare;
  facts: ProgramFacts;
}

/** The instance exists, or (for a snapshot) the worker lacks its program and names it. */
export type CreateReply = { status: Status; memoryLimit: number; tableBytes: number } | { need: string };

export interface InspectReply {
  memory: Uint8Array;
  globals: [number, number | bigint][];
}

/** Worker → server. */
export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'broadcast'; channel: string; data: unknown }
  | ({ ev: 'port' } & PortEnvelope)
  | { ev: 'pong'; seq: number }
  | { ev: 'reply'; req: number; value: unknown }
  | { ev: 'fail'; req: number; error: ErrorInfo }
  | { ev: 'stopped'; id: number; status: Status }
  | { ev: 'run-error'; id: number; error: ErrorInfo }
  | { ev: 'debug'; id: number; chunk: Uint8Array }
  /** It hibernated: its snapshot is the module file `checkpoint`; idle: it was dropped (nothing under way). */
  | ({ ev: 'hibernated'; id: number } & HibernationReport)
  | { ev: 'woke'; id: number };

/** Server → worker on a connection's port. */
export type ToProgram =
  | { t: 'in-data'; chunk: Uint8Array }
  | { t: 'in-end' }
  | { t: 'in-error'; message: string }
  | { t: 'out-ack'; n: number }
  | { t: 'out-closed' }
  | { t: 'out-failed'; message: string }
  | { t: 'abort'; message: string };

/** Worker → server on a connection's port. */
export type FromProgram =
  | { t: 'join' }
  | { t: 'done'; joined: boolean }
  | { t: 'in-ack'; n: number }
  | { t: 'in-cancel'; message: string }
  | { t: 'out-data'; chunk: Uint8Array }
  | { t: 'out-end' }
  | { t: 'out-abort'; message: string };

export function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'aborted' : String(reason);
}
