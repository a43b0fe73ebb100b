// What the runtime needs from a service. Services live in src/services; the
// runtime only routes packets to them and keeps their saved state.

/** Who and what a service instance serves. */
export interface ServiceContext {
  /** Instance id (UUID). */
  readonly instance: string;
  /** Principal id of the owner, when there is one. */
  readonly principal?: string;
  /** Scope the program has been granted. */
  readonly scope: readonly string[];
}

export interface ServiceConfig {
  /** Largest packet (header included) the service may send: 65536. */
  readonly maxSendSize: number;
  /** The code the program discovered the service under. */
  readonly code: number;
}

/**
 * Output channel of a service instance. Packets are whole packets, header
 * included, without padding; the runtime sets size and code and pads them.
 */
export type SendPacket = (packet: Uint8Array) => void;

/** Ends the run. An AbiViolation is reported as the program's fault; anything else as INTERNAL. */
export type AbortRun = (error: Error) => void;

export interface ServiceInstance {
  /**
   * Called before the first packet is handled (for a restored instance: before
   * the program runs). send may be called at any time until shutdown.
   */
  start(send: SendPacket, abort: AbortRun): void;
  /**
   * One packet from the program (header included, padding excluded). A reply
   * may be returned, which is queued at once. Throwing ends the run.
   */
  handle(packet: Uint8Array): Uint8Array | void;
  /**
   * End of the run. Returns the service's saved state (empty when none),
   * which is given back to create() when the instance resumes.
   */
  shutdown(): Uint8Array;
  /**
   * For hibernation (optional): the state shutdown() would return, taken
   * without ending anything, and whether the service is idle: nothing under
   * way that may later send the program a packet (no client joined, no
   * request in progress, no registration others can reach). While its
   * program waits, a host writes the program and these states to storage
   * and releases the program's memory; if every service is idle, it may
   * drop the services too, and restore them from these states when the
   * program is needed again. A service without it keeps its program from
   * hibernating.
   */
  hibernate?(): { state: Uint8Array; idle: boolean };
  /**
   * Optional asynchronous end of run, for services whose state lives
   * elsewhere (external gRPC services). When present, the runtime should
   * await it after the program has stopped and before calling shutdown();
   * suspend is false when the run ended with an error. A service must cope
   * with shutdown() being called without it (its state may then be lost).
   */
  prepareShutdown?(suspend: boolean): Promise<void>;
}

export interface ServiceFactory {
  readonly name: string;
  readonly revision: string;
  /** Whether the service accepts flow and data packets. */
  readonly streams: boolean;
  /** Create the per-run instance; saved is the state from shutdown() of the previous run. */
  create(context: ServiceContext, config: ServiceConfig, saved: Uint8Array | null): ServiceInstance;
}

/** The services an instance may discover. */
export interface ServiceRegistry {
  /** A service that is available to this instance, or undefined. */
  lookup(name: string): ServiceFactory | undefined;
}
