// The random service (services.md §4.4): a call whose first byte is n > 0
// gets n cryptographically random bytes, rate-limited to bitsPerMinute; an
// empty call or n = 0 gets an empty reply.
//
// Unlike Gate, calls are answered strictly in order (a call arriving while
// an earlier one waits for its rate-limit slot waits behind it instead of
// taking the earlier caller's reply), and the saved state keeps every
// unanswered call's byte count.

import { AbiViolation } from '../runtime/instance/errors.ts';
import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../runtime/packet/packet.ts';
import type { SendPacket, ServiceConfig, ServiceFactory, ServiceInstance } from '../runtime/service/service.ts';
import { ByteReader, ByteWriter, SavedStateError } from './varint.ts';

export const RANDOM_NAME = 'random';
export const RANDOM_REVISION = '0';

/** Gate's default: 16 bytes per second. */
export const DEFAULT_BITS_PER_MINUTE = 16 * 8 * 60;

/** Calls that may wait at once; more is a protocol violation (only 256 outstanding calls are addressable). */
export const MAX_PENDING_RANDOM_CALLS = 256;

export interface RandomOptions {
  /** Rate limit (default 7680); values above 2^31−1 are clamped. Must be > 0. */
  readonly bitsPerMinute?: number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
  /** Fills a buffer with random bytes (default crypto.getRandomValues). */
  readonly fill?: (buffer: Uint8Array) => void;
}

/** Milliseconds one byte costs: ceil(8 minutes / bitsPerMinute) in whole nanoseconds, as Gate rounds. */
export function randomByteInterval(bitsPerMinute: number): number {
  const bpm = Math.min(bitsPerMinute, 0x7fffffff);
  return Math.ceil(480_000_000_000 / bpm) / 1e6;
}

export function createRandomService(options: RandomOptions = {}): ServiceFactory {
  const bpm = options.bitsPerMinute ?? DEFAULT_BITS_PER_MINUTE;
  if (!(bpm > 0)) {
    throw new RangeError(`random service needs bitsPerMinute > 0: ${bpm}`);
  }
  const interval = randomByteInterval(bpm);
  const now = options.now ?? (() => performance.now());
  const fill = options.fill ?? ((b: Uint8Array) => void crypto.getRandomValues(b as Uint8Array<ArrayBuffer>));
  return {
    name: RANDOM_NAME,
    revision: RANDOM_REVISION,
    streams: false,
    create(_context, config, saved) {
      return new RandomInstance(config, interval, now, fill, saved);
    },
  };
}

class RandomInstance implements ServiceInstance {
  readonly #code: number;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #fill: (buffer: Uint8Array) => void;
  /** Byte counts of the unanswered calls, oldest first. */
  readonly #pending: number[] = [];
  /** When the last bytes were sent (creation time at first: no credit up front). */
  #last: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #send: SendPacket | null = null;
  #stopped = false;

  constructor(
    config: ServiceConfig,
    interval: number,
    now: () => number,
    fill: (buffer: Uint8Array) => void,
    saved: Uint8Array | null,
  ) {
    this.#code = config.code;
    this.#interval = interval;
    this.#now = now;
    this.#fill = fill;
    this.#last = now();
    if (saved !== null && saved.length > 0) this.#restore(saved);
  }

  #restore(saved: Uint8Array): void {
    if (saved.length === 1) {
      // Gate's buffer: one byte, nonzero when a reply was pending (its size was not kept).
      if (saved[0] > 0) this.#pending.push(1);
      return;
    }
    const r = new ByteReader(saved);
    const count = r.varint();
    if (count > MAX_PENDING_RANDOM_CALLS) throw new SavedStateError('too many pending random calls in saved state');
    for (const n of r.bytes(count)) this.#pending.push(n);
    if (r.remaining !== 0) throw new SavedStateError('trailing data in random service state');
  }

  start(send: SendPacket): void {
    this.#send = send;
    this.#pump();
  }

  handle(packet: Uint8Array): void {
    if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
    if (this.#pending.length >= MAX_PENDING_RANDOM_CALLS) {
      throw new AbiViolation('too many outstanding random calls');
    }
    this.#pending.push(packet.length > HEADER_SIZE ? packet[HEADER_SIZE] : 0);
    if (this.#timer === undefined) this.#pump();
  }

  // Answer what is due, in order; wait for the rest.
  #pump(): void {
    this.#timer = undefined;
    while (!this.#stopped && this.#pending.length > 0) {
      const n = this.#pending[0];
      const now = this.#now();
      if (n > 0) {
        const wait = this.#last + n * this.#interval - now;
        if (wait > 0) {
          this.#timer = setTimeout(() => this.#pump(), Math.ceil(wait));
          return;
        }
        this.#last = now;
      }
      this.#pending.shift();
      const reply = makePacket(HEADER_SIZE + n, this.#code, Domain.CALL);
      this.#fill(reply.subarray(HEADER_SIZE));
      this.#send!(reply);
    }
  }

  shutdown(): Uint8Array {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#save();
  }

  /** Calls waiting for their bits will be answered later: not idle. */
  hibernate(): { state: Uint8Array; idle: boolean } {
    return { state: this.#save(), idle: this.#pending.length === 0 };
  }

  #save(): Uint8Array {
    if (this.#pending.length === 0) return new Uint8Array(0);
    return new ByteWriter().varint(this.#pending.length).bytes(Uint8Array.from(this.#pending)).finish();
  }
}
