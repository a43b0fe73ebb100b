// The origin service (services.md §4.1): joins the program to client
// connections. The host makes one OriginConnector per instance run, registers
// it (it is the service's factory) in the run's child registry, and calls
// connect() for each client (`call`, `io`). The program accepts connections
// with empty calls; each accept is answered when a client joins, with the
// stream id of the new connection.

import { AbiViolation } from '../runtime/instance/errors.ts';
import {
  Domain,
  HEADER_SIZE,
  dataPayload,
  dataStreamId,
  makePacket,
  packetDomain,
  readFlows,
} from '../runtime/packet/packet.ts';
import type {
  AbortRun,
  SendPacket,
  ServiceConfig,
  ServiceContext,
  ServiceFactory,
  ServiceInstance,
} from '../runtime/service/service.ts';
import { DEFAULT_BUFSIZE, MAX_CREDIT, MAX_EXCESS, Stream } from './stream.ts';
import { ByteReader, ByteWriter, SavedStateError } from './varint.ts';

export const ORIGIN_NAME = 'origin';
export const ORIGIN_REVISION = '0';

export interface OriginOptions {
  /** Program → client ring size per stream: a power of two (default 32768). */
  readonly bufsize?: number;
  /**
   * Restored streams whose client was cut by a suspension wait for a new
   * client (the next connect() joins the lowest of them) instead of draining
   * to EOF as Gate does. This is what makes a migrated conversation go on.
   */
  readonly reattach?: boolean;
}

interface Waiter {
  readonly input: ReadableStream<Uint8Array> | null;
  readonly output: WritableStream<Uint8Array> | null;
  readonly onJoin: ((id: number) => void) | undefined;
  stream: Stream | null;
  settle(joined: boolean): void;
}

/**
 * Per-run origin service: the ServiceFactory to register, and the host's
 * handle for connecting clients. Usable for one instance run only (create a
 * new one at resume).
 */
export class OriginConnector implements ServiceFactory {
  readonly name = ORIGIN_NAME;
  readonly revision = ORIGIN_REVISION;
  readonly streams = true;
  readonly bufsize: number;
  readonly reattach: boolean;

  #instance: OriginInstance | null = null;
  #waiters: Waiter[] = [];
  #closed = false;
  readonly #listeners = new Set<() => void>();

  constructor(options: OriginOptions = {}) {
    const bufsize = options.bufsize ?? DEFAULT_BUFSIZE;
    if (!Number.isInteger(bufsize) || bufsize < 2 || bufsize > 2 ** 30 || (bufsize & (bufsize - 1)) !== 0) {
      throw new RangeError(`origin bufsize must be a power of two between 2 and 2^30: ${bufsize}`);
    }
    this.bufsize = bufsize;
    this.reattach = options.reattach ?? false;
  }

  create(_context: ServiceContext, config: ServiceConfig, saved: Uint8Array | null): ServiceInstance {
    if (this.#instance !== null) {
      throw new Error('origin connector used for more than one service instance');
    }
    this.#instance = new OriginInstance(
      {
        bufsize: this.bufsize,
        reattach: this.reattach,
        notify: () => this.#notify(),
        join: () => this.#join(),
        close: () => this.close(),
        waitingClients: () => this.#waiters.length,
      },
      config,
      saved,
    );
    return this.#instance;
  }

  /**
   * Connect a client. Waits until the program has a pending accept, then
   * answers it with the lowest free stream id (onJoin is called with it at
   * that moment) and transfers input → program and program → output.
   *
   * Resolves true once a joined connection is over: the stream finished in
   * both directions (output closed), the signal aborted (the client is cut;
   * the program still gets EOF and flow 0), or the run ended (output closed
   * after the program's buffered output was flushed).
   *
   * Resolves false if the program never accepted: the run ended, close() was
   * called, or the signal aborted while waiting. input and output are then
   * left untouched (not locked, not closed).
   *
   * input null means no client input (the program gets EOF at once); output
   * null means the client takes no output (the program gets flow 0).
   * Rejects (TypeError) only if input or output is already locked.
   */
  connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: (id: number) => void,
  ): Promise<boolean> {
    if (input?.locked || output?.locked) {
      // Caught here: failing later, inside packet handling, would end the run.
      return Promise.reject(new TypeError('origin connect: client stream is locked'));
    }
    if (this.#closed || signal?.aborted) return Promise.resolve(false);

    return new Promise<boolean>((resolve) => {
      let settled = false;
      const onAbort = (): void => {
        if (waiter.stream === null) {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          this.#notify();
        } else {
          waiter.stream.disconnect(signal?.reason);
        }
        waiter.settle(waiter.stream !== null);
      };
      const waiter: Waiter = {
        input,
        output,
        onJoin,
        stream: null,
        settle: (joined) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(joined);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#notify();
      this.#join();
    });
  }

  /** Accept calls the program has made that no client has joined yet. */
  get pendingAccepts(): number {
    return this.#instance?.pending ?? 0;
  }

  /** connect() calls waiting for an accept. */
  get waitingClients(): number {
    return this.#waiters.length;
  }

  /** Restored streams waiting for a client to take over their connection (reattach). */
  get detachedStreams(): number {
    return this.#instance?.detached.length ?? 0;
  }

  /** Streams that have not finished (joined connections and restored streams). */
  get activeStreams(): number {
    return this.#instance?.streams.size ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Call listener whenever pendingAccepts, waitingClients or activeStreams may
   * have changed. Returns the unsubscribe function.
   */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The run has ended: waiting connects resolve false, joined connections are
   * cut (their connects resolve true), and later connects resolve false.
   * The runtime's shutdown() of the instance does the same; calling both, in
   * either order, is fine.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.settle(false);
    this.#instance?.stopAll();
    this.#notify();
  }

  #notify(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // A faulty listener must not break packet handling.
      }
    }
  }

  #join(): void {
    const inst = this.#instance;
    if (inst === null || inst.send === null || this.#closed) return;
    let changed = false;
    // A client first takes over a restored connection, then answers an accept.
    while (inst.detached.length > 0 && this.#waiters.length > 0) {
      this.#attach(inst, this.#waiters.shift()!, inst.streams.get(inst.detached.shift()!)!);
      changed = true;
    }
    while (inst.pending > 0 && this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      this.#attach(inst, w, inst.open());
      changed = true;
    }
    if (changed) this.#notify();
  }

  #attach(inst: OriginInstance, w: Waiter, stream: Stream): void {
    w.stream = stream;
    try {
      w.onJoin?.(stream.id);
    } catch {
      // The caller's callback failing does not concern the program.
    }
    stream.start(inst.send!, inst.abort!, w.input, w.output);
    stream.closed.then(() => w.settle(true));
  }
}

/** What an instance needs from its connector. */
interface ConnectorHooks {
  readonly bufsize: number;
  readonly reattach: boolean;
  /** Tell the connector's listeners that counts may have changed. */
  notify(): void;
  /** Join waiting clients to pending accepts. */
  join(): void;
  /** The run is over. */
  close(): void;
  /** connect() calls waiting for an accept. */
  waitingClients(): number;
}

class OriginInstance implements ServiceInstance {
  readonly #connector: ConnectorHooks;
  readonly #code: number;
  readonly #maxSendSize: number;
  pending = 0;
  readonly streams = new Map<number, Stream>();
  /** Restored stream ids waiting for a client (reattach), lowest first. */
  detached: number[] = [];
  send: SendPacket | null = null;
  abort: AbortRun | null = null;
  #stopped = false;

  constructor(connector: ConnectorHooks, config: ServiceConfig, saved: Uint8Array | null) {
    this.#connector = connector;
    this.#code = config.code;
    this.#maxSendSize = config.maxSendSize;
    if (saved !== null && saved.length > 0) this.#restore(saved);
  }

  #restore(saved: Uint8Array): void {
    const r = new ByteReader(saved);
    this.pending = r.varint();
    if (r.remaining === 0) return;
    const count = r.varint();
    for (let i = 0; i < count; i++) {
      const id = r.varint();
      const state = Stream.decodeState(r, { maxSendSize: this.#maxSendSize, bufsize: this.#connector.bufsize });
      if (this.streams.has(id)) {
        throw new SavedStateError('origin service resumed stream with duplicate id');
      }
      this.streams.set(id, this.#stream(id, state));
    }
    if (r.remaining !== 0) this.#restoreExcess(r);
  }

  // Our extension after Gate's fields: client input read ahead of the
  // program's credit, per stream (present only when there is some).
  #restoreExcess(r: ByteReader): void {
    const count = r.varint();
    for (let i = 0; i < count; i++) {
      const id = r.varint();
      const length = r.varint();
      if (length === 0 || length > MAX_EXCESS) throw new SavedStateError('origin read-ahead size limit exceeded');
      const stream = this.streams.get(id);
      if (stream === undefined) throw new SavedStateError('origin read-ahead for unknown stream');
      stream.readAhead(r.bytes(length));
    }
    if (r.remaining !== 0) {
      throw new SavedStateError('trailing data in origin service state');
    }
  }

  #stream(id: number, state?: ConstructorParameters<typeof Stream>[2]): Stream {
    return new Stream(
      id,
      {
        code: this.#code,
        maxSendSize: this.#maxSendSize,
        bufsize: this.#connector.bufsize,
        // Notes (negative flow values) mean nothing to origin.
        onFinished: () => {
          if (this.streams.get(id) !== undefined && !this.#stopped) {
            this.streams.delete(id);
            this.#connector.notify();
          }
        },
      },
      state,
    );
  }

  /** Answer the oldest pending accept with a new stream on the lowest free id. */
  open(): Stream {
    let id = 0;
    while (this.streams.has(id)) id++;
    const stream = this.#stream(id);
    this.streams.set(id, stream);
    this.pending--;
    const reply = makePacket(HEADER_SIZE + 8, this.#code, Domain.CALL);
    new DataView(reply.buffer).setInt32(HEADER_SIZE, id, true); // then 4 zero bytes (error field)
    this.send!(reply);
    return stream;
  }

  start(send: SendPacket, abort: AbortRun): void {
    this.send = send;
    this.abort = abort;
    // Restored streams have no connection; drain them all at once (Gate
    // drains them one by one, which can deadlock a program).
    for (const id of [...this.streams.keys()].sort((a, b) => a - b)) {
      const stream = this.streams.get(id)!;
      if (this.#connector.reattach && stream.awaitsClient) this.detached.push(id);
      else stream.start(send, abort, null, null);
    }
    this.#connector.join();
  }

  handle(packet: Uint8Array): Uint8Array | void {
    switch (packetDomain(packet)) {
      case Domain.CALL:
        if (this.pending >= MAX_CREDIT) {
          throw new AbiViolation('too many simultaneous origin accept calls');
        }
        this.pending++;
        this.#connector.notify();
        this.#connector.join();
        return;

      case Domain.FLOW:
        for (const { id, value } of readFlows(packet)) {
          this.#get(id).flow(value);
        }
        return;

      case Domain.DATA:
        this.#get(dataStreamId(packet)).data(dataPayload(packet));
        return;

      default:
        return; // info: ignored
    }
  }

  #get(id: number): Stream {
    const s = this.streams.get(id);
    if (s === undefined) {
      throw new AbiViolation(`origin stream not found: ${id}`);
    }
    return s;
  }

  stopAll(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.streams.values()) s.stop();
  }

  shutdown(): Uint8Array {
    this.#connector.close();
    this.stopAll();
    return this.#save();
  }

  /**
   * Idle while no stream is open and no client waits for an accept:
   * pending accepts are part of the state (a client arriving later is
   * joined by the restored service).
   */
  hibernate(): { state: Uint8Array; idle: boolean } {
    return { state: this.#save(), idle: this.streams.size === 0 && this.#connector.waitingClients() === 0 };
  }

  #save(): Uint8Array {
    if (this.pending === 0 && this.streams.size === 0) return new Uint8Array(0);
    const w = new ByteWriter().varint(this.pending);
    if (this.streams.size > 0) {
      w.varint(this.streams.size);
      for (const id of [...this.streams.keys()].sort((a, b) => a - b)) {
        w.varint(id);
        // The client connection the unwritten output was meant for is gone.
        this.streams.get(id)!.encode(w, { discardWriteData: true });
      }
      const ahead = [...this.streams.keys()]
        .sort((a, b) => a - b)
        .map((id) => [id, this.streams.get(id)!.state().read.excess ?? new Uint8Array(0)] as const)
        .filter(([, bytes]) => bytes.length > 0);
      if (ahead.length > 0) {
        w.varint(ahead.length);
        for (const [id, bytes] of ahead) w.varint(id).varint(bytes.length).bytes(bytes);
      }
    }
    return w.finish();
  }
}
