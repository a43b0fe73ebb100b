// Host side of one flow-controlled bidirectional stream (services.md §3),
// joining a program's stream to a client connection made of a
// ReadableStream (client → program, the "read" direction) and a
// WritableStream (program → client, the "write" direction).
//
// Everything that reacts to the program (flow(), data()) is synchronous, so
// services can call it from handle(); client I/O runs in promises that call
// send() later. Program protocol errors are thrown as AbiViolation.

import { AbiViolation } from '../runtime/instance/errors.ts';
import {
  DATA_HEADER_SIZE,
  MAX_PACKET_SIZE,
  makeDataPacket,
  makeFlowPacket,
} from '../runtime/packet/packet.ts';
import type { AbortRun, SendPacket } from '../runtime/service/service.ts';
import { ByteReader, ByteWriter, SavedStateError } from './varint.ts';

/** Read: the program has not sent flow 0. Write: the host has not sent flow 0. */
export const FLAG_SUBSCRIBING = 1;
/** The client reader (read) or writer (write) is open. */
export const FLAG_CONNECTED = 2;
/** Read: the host has not sent data EOF. Write: the program has not sent data EOF. */
export const FLAG_TRANSFERRING = 4;
export const INITIAL_FLAGS = FLAG_SUBSCRIBING | FLAG_CONNECTED | FLAG_TRANSFERRING;

/** Write ring size used when none is given (origin's default). */
export const DEFAULT_BUFSIZE = 32768;
/** Outstanding credit in one direction may never exceed this. */
export const MAX_CREDIT = 0x7fffffff;

/** Saved state of one direction (§3.5). All zero means finished. */
export interface DirectionState {
  readonly flags: number;
  /** Read: credit granted by the program, unused. Write: credit granted to the program + bytes buffered. */
  readonly subscribed: number;
  /** Read: client bytes whose credit is spent but not yet delivered. Write: program bytes not yet written. */
  readonly data: Uint8Array;
  /**
   * Read only: bytes taken from the client beyond the program's credit (a
   * client chunk larger than the window). Not part of Gate's format: saved
   * separately so that a migrated connection loses no input.
   */
  readonly excess?: Uint8Array;
}

/** Largest read-ahead a saved read direction may carry. */
export const MAX_EXCESS = 16 * 1024 * 1024;

export interface StreamState {
  readonly read: DirectionState;
  readonly write: DirectionState;
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function initialDirectionState(): DirectionState {
  return { flags: INITIAL_FLAGS, subscribed: 0, data: EMPTY };
}

export function encodeDirectionState(w: ByteWriter, s: DirectionState): void {
  w.varint(s.flags).varint(s.subscribed).varint(s.data.length).bytes(s.data);
}

/** Parse one direction; maxData is MaxSendSize for read, bufsize for write. */
export function decodeDirectionState(r: ByteReader, maxData: number): DirectionState {
  const flags = r.varint();
  const subscribed = r.varint();
  const length = r.varint();
  if (length > maxData) {
    throw new SavedStateError('serialized buffer state size limit exceeded');
  }
  const data = r.bytes(length);
  if (flags & ~INITIAL_FLAGS) {
    throw new SavedStateError('impossible state');
  }
  // Once data EOF has passed, there can be neither a connection nor bytes.
  if (!(flags & FLAG_TRANSFERRING) && (flags & FLAG_CONNECTED || length !== 0)) {
    throw new SavedStateError('impossible state');
  }
  return { flags, subscribed, data };
}

function ignore(): void {}

/** Where a direction reports what it sends and when it may have changed state. */
interface Link {
  readonly code: number;
  readonly id: number;
  readonly send: SendPacket;
  readonly abort: AbortRun;
  readonly changed: () => void;
}

/**
 * Client → program. Reads from the client only while the program has granted
 * credit, and delivers at most min(credit, maxSendSize − 16) bytes per data
 * packet.
 */
export class ReadStream {
  readonly #maxChunk: number;
  #loaded: DirectionState | null;
  #link: Link | null = null;
  #stopped: DirectionState | null = null;

  #subscribing: boolean;
  #sending: boolean; // data EOF not yet sent
  #credit: number;
  /** Bytes read from the client, not yet delivered (may exceed the credit). */
  #pending: Uint8Array;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #reading = false;

  constructor(maxSendSize: number, state?: DirectionState) {
    this.#maxChunk = maxSendSize - DATA_HEADER_SIZE;
    const s = state ?? initialDirectionState();
    this.#loaded = state ?? null;
    this.#subscribing = (s.flags & FLAG_SUBSCRIBING) !== 0;
    this.#sending = (s.flags & FLAG_TRANSFERRING) !== 0;
    // Saved bytes were paid for before the suspension: deliver them regardless.
    this.#credit = s.subscribed + s.data.length;
    if (this.#credit > MAX_CREDIT) {
      throw new SavedStateError('impossible state');
    }
    this.#pending = s.excess && s.excess.length > 0 ? concat(s.data, s.excess) : s.data;
  }

  /** Both the data EOF and the program's flow 0 have passed. */
  get finished(): boolean {
    return !this.#subscribing && !this.#sending && this.#reader === null;
  }

  /** Restored with a client connection that is gone, and not started: a new client can take its place. */
  get awaitsClient(): boolean {
    return this.#link === null && this.#loaded !== null && (this.#loaded.flags & FLAG_CONNECTED) !== 0;
  }

  /** Restored client input read ahead of the program's credit (see DirectionState.excess); before start(). */
  readAhead(bytes: Uint8Array): void {
    if (this.#loaded === null || this.#link !== null) throw new Error('read-ahead applies to a restored stream before it starts');
    this.#loaded = { ...this.#loaded, excess: concat(this.#loaded.excess ?? EMPTY, bytes) };
    this.#pending = concat(this.#pending, bytes);
  }

  /** Credit the program has granted and the host has not used. */
  get credit(): number {
    return this.#credit;
  }

  /** Start transferring. input is used only if the state says the client reader is open (new streams). */
  start(link: Link, input: ReadableStream<Uint8Array> | null): void {
    this.#link = link;
    const connected = this.#loaded === null || (this.#loaded.flags & FLAG_CONNECTED) !== 0;
    if (input !== null) {
      if (connected && this.#sending) {
        this.#reader = input.getReader();
        this.#reader.closed.catch(ignore); // errors are seen by read()
      } else {
        input.cancel().catch(ignore);
      }
    }
    this.#kick();
  }

  /** A flow value from the program (≥ 0; negative notes are the caller's business). */
  flow(value: number): void {
    if (!this.#subscribing) {
      throw new AbiViolation('read stream already closed');
    }
    if (value === 0) {
      this.#subscribing = false;
    } else {
      if (this.#credit + value > MAX_CREDIT) {
        throw new AbiViolation('stream flow credit overflow');
      }
      this.#credit += value;
    }
    this.#kick();
  }

  /** The client went away: end its input (the program still gets buffered bytes, then EOF). */
  disconnect(reason?: unknown): void {
    this.#closeReader(reason);
    this.#kick();
  }

  /** End of the run: stop transferring and capture the state. */
  stop(): void {
    if (this.#stopped !== null) return;
    this.#stopped = this.#capture();
    this.#closeReader();
    this.#pending = EMPTY;
  }

  state(): DirectionState {
    if (this.#stopped !== null) return this.#stopped;
    if (this.#link === null && this.#loaded !== null) return this.#loaded;
    return this.#capture();
  }

  #capture(): DirectionState {
    // Only bytes that fit the remaining credit count as read-but-undelivered
    // in Gate's terms; the rest is kept apart as read-ahead.
    const n = Math.min(this.#pending.length, this.#credit, this.#maxChunk);
    const state = {
      flags:
        (this.#subscribing ? FLAG_SUBSCRIBING : 0) |
        (this.#reader !== null ? FLAG_CONNECTED : 0) |
        (this.#sending ? FLAG_TRANSFERRING : 0),
      subscribed: this.#credit - n,
      data: this.#pending.slice(0, n),
    };
    return n < this.#pending.length ? { ...state, excess: this.#pending.slice(n) } : state;
  }

  #closeReader(reason?: unknown): void {
    const r = this.#reader;
    if (r === null) return;
    this.#reader = null;
    r.cancel(reason).catch(ignore); // also ends a pending read
  }

  // Do everything that can be done now.
  #kick(): void {
    const link = this.#link;
    if (link === null || this.#stopped !== null) return;

    while (this.#credit > 0 && this.#pending.length > 0) {
      const n = Math.min(this.#credit, this.#maxChunk, this.#pending.length);
      link.send(makeDataPacket(link.code, link.id, this.#pending.subarray(0, n)));
      this.#pending = this.#pending.subarray(n);
      this.#credit -= n;
    }
    if (!this.#subscribing && this.#credit === 0) {
      // The program wants no more: stop reading and drop what cannot be delivered.
      this.#closeReader();
      this.#pending = EMPTY;
    }
    if (this.#sending && this.#reader === null && this.#pending.length === 0) {
      this.#sending = false;
      link.send(makeDataPacket(link.code, link.id, EMPTY));
    }
    if (this.#reader !== null && !this.#reading && this.#credit > 0 && this.#pending.length === 0) {
      this.#read(this.#reader, link);
    }
    link.changed();
  }

  #read(reader: ReadableStreamDefaultReader<Uint8Array>, link: Link): void {
    this.#reading = true;
    reader.read().then(
      (result) => {
        this.#reading = false;
        if (this.#stopped !== null || this.#reader !== reader) return; // cut meanwhile
        if (result.done) {
          this.#reader = null;
        } else if (result.value instanceof Uint8Array) {
          this.#pending = result.value;
        } else {
          this.#closeReader(new TypeError('client input chunk is not a Uint8Array'));
        }
        this.#kick();
      },
      () => {
        // A failing client input is just its end, as far as the program is concerned.
        this.#reading = false;
        if (this.#stopped !== null || this.#reader !== reader) return;
        this.#reader = null;
        this.#kick();
      },
    ).catch((err: unknown) => link.abort(err instanceof Error ? err : new Error(String(err))));
  }
}

/**
 * Program → client through a ring buffer of bufsize bytes. The program's
 * credit is topped up as bytes are handed to the client writer, which is
 * done only when the writer signals readiness (backpressure).
 */
export class WriteStream {
  readonly #bufsize: number;
  readonly #loaded: DirectionState | null;
  #link: Link | null = null;
  #stopped: DirectionState | null = null;

  #subscribing: boolean; // flow 0 not yet sent
  #receiving: boolean; // program data EOF not yet received
  #subscribed: number; // credit granted to the program + bytes buffered
  #ring: Uint8Array | null = null; // allocated on first use
  #head = 0;
  #count = 0;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #writing = false;
  #closing: Promise<void> = Promise.resolve();

  constructor(bufsize: number, state?: DirectionState) {
    if (!Number.isInteger(bufsize) || bufsize < 2 || bufsize > 2 ** 30 || (bufsize & (bufsize - 1)) !== 0) {
      throw new RangeError(`stream buffer size must be a power of two between 2 and 2^30: ${bufsize}`);
    }
    this.#bufsize = bufsize;
    const s = state ?? initialDirectionState();
    this.#loaded = state ?? null;
    if (s.subscribed > bufsize - 1 || s.data.length > s.subscribed) {
      throw new SavedStateError('impossible state');
    }
    this.#subscribing = (s.flags & FLAG_SUBSCRIBING) !== 0;
    this.#receiving = (s.flags & FLAG_TRANSFERRING) !== 0;
    this.#subscribed = s.subscribed;
    if (s.data.length > 0) this.#append(s.data);
  }

  get bufsize(): number {
    return this.#bufsize;
  }

  /** Both the program's data EOF and the host's flow 0 have passed. */
  get finished(): boolean {
    return !this.#subscribing && !this.#receiving && this.#writer === null;
  }

  /** Restored with a client connection that is gone, and not started: a new client can take its place. */
  get awaitsClient(): boolean {
    return this.#link === null && this.#loaded !== null && (this.#loaded.flags & FLAG_CONNECTED) !== 0;
  }

  /** Bytes received from the program and not yet handed to the client. */
  get buffered(): number {
    return this.#count;
  }

  /** Settles when the client writer's close (or abort) has finished. */
  get closing(): Promise<void> {
    return this.#closing;
  }

  /** Start transferring. output is used only if the state says the client writer is open (new streams). */
  start(link: Link, output: WritableStream<Uint8Array> | null): void {
    this.#link = link;
    const connected = this.#loaded === null || (this.#loaded.flags & FLAG_CONNECTED) !== 0;
    if (output !== null) {
      if (connected) {
        const w = output.getWriter();
        this.#writer = w;
        // Notice a client that goes away even while nothing is being written.
        w.closed.catch((err: unknown) => this.#failed(w, err));
      } else {
        output.close().catch(ignore);
      }
    }
    this.#kick();
  }

  /** Data from the program (non-empty). */
  write(data: Uint8Array): void {
    if (!this.#receiving) {
      throw new AbiViolation('write stream already closed');
    }
    if (data.length > this.#subscribed - this.#count) {
      throw new AbiViolation('write stream buffer overflow');
    }
    this.#append(data);
    this.#kick();
  }

  /** Data EOF from the program. */
  end(): void {
    if (!this.#receiving) {
      throw new AbiViolation('write stream already closed');
    }
    this.#receiving = false;
    this.#kick();
  }

  /** The client went away: abort its writer; later program data is buffered but never written. */
  disconnect(reason?: unknown): void {
    const w = this.#writer;
    if (w !== null) {
      this.#writer = null;
      this.#closing = w.abort(reason).catch(ignore);
    }
    this.#kick();
  }

  /** End of the run: hand the client what is buffered, close its writer and capture the state. */
  stop(): void {
    if (this.#stopped !== null) return;
    const w = this.#writer;
    let connected = false;
    if (w !== null) {
      // The connection still exists, so the program's last output is not lost
      // (unlike Gate, which drops it): flush it regardless of backpressure.
      if (this.#count > 0) w.write(this.#take(this.#count)).catch(ignore);
      this.#writer = null;
      this.#closing = w.close().catch(ignore);
      // After the program's EOF the flush completed the direction's output.
      connected = this.#receiving;
    }
    this.#stopped = {
      flags:
        (this.#subscribing ? FLAG_SUBSCRIBING : 0) |
        (connected ? FLAG_CONNECTED : 0) |
        (this.#receiving ? FLAG_TRANSFERRING : 0),
      subscribed: this.#subscribed,
      data: this.#take(this.#count, false),
    };
  }

  state(): DirectionState {
    if (this.#stopped !== null) return this.#stopped;
    if (this.#link === null && this.#loaded !== null) return this.#loaded;
    return {
      flags:
        (this.#subscribing ? FLAG_SUBSCRIBING : 0) |
        (this.#writer !== null ? FLAG_CONNECTED : 0) |
        (this.#receiving ? FLAG_TRANSFERRING : 0),
      subscribed: this.#subscribed,
      data: this.#peek(),
    };
  }

  #append(data: Uint8Array): void {
    this.#ring ??= new Uint8Array(this.#bufsize);
    const pos = (this.#head + this.#count) & (this.#bufsize - 1);
    const first = Math.min(data.length, this.#bufsize - pos);
    this.#ring.set(data.subarray(0, first), pos);
    this.#ring.set(data.subarray(first), 0);
    this.#count += data.length;
  }

  #peek(): Uint8Array {
    const out = new Uint8Array(this.#count);
    if (this.#ring === null) return out;
    const first = Math.min(this.#count, this.#bufsize - this.#head);
    out.set(this.#ring.subarray(this.#head, this.#head + first));
    out.set(this.#ring.subarray(0, this.#count - first), first);
    return out;
  }

  // Copy n buffered bytes out; consume them (releasing credit) unless told not to.
  #take(n: number, consume = true): Uint8Array {
    const out = this.#peek().subarray(0, n);
    if (consume) {
      this.#head = (this.#head + n) & (this.#bufsize - 1);
      this.#count -= n;
      this.#subscribed -= n;
    }
    return out;
  }

  #failed(w: WritableStreamDefaultWriter<Uint8Array>, _err: unknown): void {
    if (this.#writer !== w) return;
    this.#writer = null;
    this.#kick();
  }

  #kick(): void {
    const link = this.#link;
    if (link === null || this.#stopped !== null) return;

    const w = this.#writer;
    if (w !== null && !this.#writing) {
      if (this.#count > 0) {
        this.#pump(w, link);
      } else if (!this.#receiving) {
        this.#writer = null;
        this.#closing = w.close().catch(ignore);
      }
    }
    if (this.#subscribing) {
      if (this.#writer !== null) {
        const increment = this.#bufsize - 1 - this.#subscribed;
        if (increment > 0) {
          this.#subscribed += increment;
          link.send(makeFlowPacket(link.code, [{ id: link.id, value: increment }]));
        }
      } else {
        this.#subscribing = false;
        link.send(makeFlowPacket(link.code, [{ id: link.id, value: 0 }]));
      }
    }
    link.changed();
  }

  // Move buffered bytes to the client as fast as its writer accepts them.
  #pump(w: WritableStreamDefaultWriter<Uint8Array>, link: Link): void {
    this.#writing = true;
    const run = async (): Promise<void> => {
      try {
        while (this.#writer === w && this.#stopped === null && this.#count > 0) {
          await w.ready;
          if (this.#writer !== w || this.#stopped !== null || this.#count === 0) break;
          w.write(this.#take(this.#count)).catch((err: unknown) => this.#failed(w, err));
          this.#kick(); // top-up flow
        }
      } catch (err) {
        this.#writing = false;
        this.#failed(w, err); // ready rejected: the client writer failed
        return;
      }
      this.#writing = false;
      this.#kick();
    };
    run().catch((err: unknown) => link.abort(err instanceof Error ? err : new Error(String(err))));
  }
}

export interface StreamOptions {
  /** The service's code (the runtime overwrites it, but packets carry it anyway). */
  readonly code: number;
  /** Largest packet the service may send; data packets carry at most this − 16 bytes. Default 65536. */
  readonly maxSendSize?: number;
  /** Write ring size, a power of two. Default 32768. */
  readonly bufsize?: number;
  /** Negative flow values from the program (service-specific notes). Default: ignored. */
  readonly onNote?: (value: number) => void;
  /** Called once, synchronously, when the stream has finished in both directions. */
  readonly onFinished?: () => void;
}

/**
 * One stream id of a service: a ReadStream and a WriteStream. A new stream
 * joins a client connection; a restored one (constructed with a state) runs
 * without connection and just drains: saved client bytes, data EOF and flow 0
 * as far as not sent before.
 */
export class Stream {
  readonly id: number;
  readonly read: ReadStream;
  readonly write: WriteStream;
  readonly #code: number;
  readonly #onNote: ((value: number) => void) | undefined;
  readonly #onFinished: (() => void) | undefined;
  #ended = false;
  #resolveClosed!: () => void;
  /** Settles when the stream has finished or was stopped, and the client writer has been closed. */
  readonly closed: Promise<void>;

  constructor(id: number, options: StreamOptions, state?: StreamState) {
    this.id = id;
    this.#code = options.code;
    this.#onNote = options.onNote;
    this.#onFinished = options.onFinished;
    this.read = new ReadStream(options.maxSendSize ?? MAX_PACKET_SIZE, state?.read);
    this.write = new WriteStream(options.bufsize ?? DEFAULT_BUFSIZE, state?.write);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Parse a saved stream (read state, then write state). */
  static decodeState(r: ByteReader, options: { maxSendSize?: number; bufsize?: number } = {}): StreamState {
    const read = decodeDirectionState(r, options.maxSendSize ?? MAX_PACKET_SIZE);
    const write = decodeDirectionState(r, options.bufsize ?? DEFAULT_BUFSIZE);
    return { read, write };
  }

  get finished(): boolean {
    return this.read.finished && this.write.finished;
  }

  /**
   * A restored stream whose client connection was cut by the suspension:
   * instead of draining it, a new client may be joined to it (reattach).
   */
  get awaitsClient(): boolean {
    return this.read.awaitsClient || this.write.awaitsClient;
  }

  /**
   * Begin: send what is due at once (restored data, EOF, initial flow) and
   * start the client transfers. input null = no client input (immediate EOF);
   * output null = no client output (flow 0).
   */
  start(
    send: SendPacket,
    abort: AbortRun,
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
  ): void {
    const link: Link = { code: this.#code, id: this.id, send, abort, changed: () => this.#changed() };
    this.read.start(link, input);
    this.write.start(link, output);
  }

  /** One flow entry from the program for this stream. */
  flow(value: number): void {
    if (value < 0) {
      this.#onNote?.(value);
      return;
    }
    this.read.flow(value);
  }

  /** A data packet's payload from the program; empty means EOF. */
  data(payload: Uint8Array): void {
    if (payload.length === 0) this.write.end();
    else this.write.write(payload);
  }

  /** The client is gone: cut both directions; the program still finishes its side. */
  disconnect(reason?: unknown): void {
    this.read.disconnect(reason);
    this.write.disconnect(reason);
  }

  /** End of the run: stop all transfers and capture the state. */
  stop(): void {
    this.read.stop();
    this.write.stop();
    this.#end();
  }

  state(): StreamState {
    return { read: this.read.state(), write: this.write.state() };
  }

  /** Restored client input read ahead of the program's credit; before start(). */
  readAhead(bytes: Uint8Array): void {
    this.read.readAhead(bytes);
  }

  /** Append the saved form; discardWriteData drops unwritten program output (origin does). */
  encode(w: ByteWriter, options: { discardWriteData?: boolean } = {}): void {
    const s = this.state();
    encodeDirectionState(w, s.read);
    encodeDirectionState(w, options.discardWriteData ? { ...s.write, data: EMPTY } : s.write);
  }

  #changed(): void {
    if (!this.#ended && this.finished) {
      this.#end();
      this.#onFinished?.();
    }
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.write.closing.then(() => this.#resolveClosed());
  }
}
