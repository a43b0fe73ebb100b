// Unsigned LEB128 varints limited to 0 … 2^31−1, as used in service state
// buffers (services.md §2.11), plus small byte reader/writer helpers for
// building and parsing those buffers.

import { AbiViolation } from '../runtime/instance/errors.ts';

/** Largest value a service-buffer varint may hold. */
export const VARINT_MAX = 0x7fffffff;

/**
 * A saved service state that cannot be loaded. It is an AbiViolation because
 * Gate counts a malformed saved state as the program's (snapshot's) fault.
 */
export class SavedStateError extends AbiViolation {
  constructor(message: string) {
    super(message);
    this.name = 'SavedStateError';
  }
}

function checkValue(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > VARINT_MAX) {
    throw new RangeError(`varint value out of range: ${value}`);
  }
}

/** Encoded size of value in bytes (1–5). */
export function varintSize(value: number): number {
  checkValue(value);
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    n++;
  }
  return n;
}

/** The encoding of value. */
export function encodeVarint(value: number): Uint8Array {
  const w = new ByteWriter();
  w.varint(value);
  return w.finish();
}

/**
 * Decode a varint at offset. Non-minimal encodings are accepted (up to 10
 * bytes, as Go's reader does), values above 2^31−1 are not.
 */
export function decodeVarint(buf: Uint8Array, offset = 0): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[offset + i];
    if (b === undefined) {
      throw new SavedStateError('end of data while decoding varint');
    }
    if (i === 9 && b > 1) {
      throw new SavedStateError('end of data while decoding varint'); // more than 64 bits
    }
    // Floating point is exact up to 2^53, which is enough to tell "too big".
    value += (b & 0x7f) * scale;
    scale *= 0x80;
    if (b < 0x80) {
      if (value > VARINT_MAX) {
        throw new SavedStateError('varint value out of range');
      }
      return { value, next: offset + i + 1 };
    }
  }
  throw new SavedStateError('end of data while decoding varint');
}

/** Appends varints and bytes to a growing buffer. */
export class ByteWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  varint(value: number): this {
    checkValue(value);
    this.#reserve(5);
    while (value >= 0x80) {
      this.#buf[this.#len++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.#buf[this.#len++] = value;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
    return this;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Reads varints and bytes from a buffer; errors are SavedStateErrors. */
export class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  varint(): number {
    const { value, next } = decodeVarint(this.#buf, this.#pos);
    this.#pos = next;
    return value;
  }

  /** n bytes (a copy, so the caller's buffer is not retained). */
  bytes(n: number): Uint8Array {
    if (n > this.remaining) {
      throw new SavedStateError('unexpected end of serialized state');
    }
    const b = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }
}
