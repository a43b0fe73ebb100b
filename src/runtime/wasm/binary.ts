// Byte-level reading and writing of the WebAssembly binary format: LEB128
// integers, names, vectors. The reader treats its input as hostile: every read
// is bounds-checked and every failure is a ModuleFormatError with an offset.

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The module is not a well-formed WebAssembly binary. */
export class ModuleFormatError extends Error {
  override name = 'ModuleFormatError';
  readonly code = 'ERR_WASM_MALFORMED';
  /** Byte offset in the module where the problem was found, when known. */
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} at offset ${hex(offset)}`);
    this.offset = offset;
  }
}

/** The module is well-formed but uses a WebAssembly feature we do not run. */
export class UnsupportedFeatureError extends Error {
  override name = 'UnsupportedFeatureError';
  readonly code = 'ERR_WASM_UNSUPPORTED_FEATURE';
  /** Proposal name, e.g. "threads", "exception-handling", "gc". */
  readonly feature: string;
  readonly offset: number | undefined;

  constructor(feature: string, what: string, offset?: number) {
    const where = offset === undefined ? '' : ` at offset ${hex(offset)}`;
    super(`module uses an unsupported WebAssembly feature: ${feature} (${what}${where})`);
    this.feature = feature;
    this.offset = offset;
  }
}

// ignoreBOM keeps a leading U+FEFF: it is part of the name, not a byte order mark.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Decode a UTF-8 name; malformed UTF-8 is a format error (names must be valid). */
export function decodeName(bytes: Uint8Array, start: number, end: number): string {
  // Plain ASCII is by far the common case and TextDecoder has a fixed cost.
  if (end - start <= 32) {
    let s = '';
    for (let i = start; i < end; i++) {
      const b = bytes[i];
      if (b >= 0x80) return decodeUtf8(bytes, start, end);
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decodeUtf8(bytes, start, end);
}

function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  try {
    return utf8.decode(bytes.subarray(start, end));
  } catch {
    throw new ModuleFormatError('malformed UTF-8 encoding in name', start);
  }
}

export class Reader {
  readonly bytes: Uint8Array;
  /** Next byte to read. */
  pos: number;
  /** Reads never go past this offset. */
  end: number;
  /** What the reader is confined to, for "unexpected end of ..." messages. */
  what: string;

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length, what = 'module') {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
    this.what = what;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  eof(at = this.pos): never {
    throw new ModuleFormatError(`unexpected end of ${this.what}`, at);
  }

  u8(): number {
    if (this.pos >= this.end) this.eof();
    return this.bytes[this.pos++];
  }

  skip(n: number): void {
    if (n > this.end - this.pos) this.eof();
    this.pos += n;
  }

  u32(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.bytes[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return this.u32Slow();
  }

  private u32Slow(): number {
    const bytes = this.bytes;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) this.eof(pos);
      const b = bytes[pos++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    if (pos >= end) this.eof(pos);
    const b = bytes[pos++];
    if (b & 0x80) throw new ModuleFormatError('LEB128 integer too long', start);
    // Only 4 payload bits remain for a 32-bit value.
    if (b > 0x0f) throw new ModuleFormatError('LEB128 integer too large', start);
    this.pos = pos;
    return (result | (b << 28)) >>> 0;
  }

  s32(): number {
    const bytes = this.bytes;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) this.eof(pos);
      const b = bytes[pos++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        const unused = 25 - shift;
        return (result << unused) >> unused;
      }
    }
    if (pos >= end) this.eof(pos);
    const b = bytes[pos++];
    if (b & 0x80) throw new ModuleFormatError('LEB128 integer too long', start);
    // Bits 4-6 of the last byte must repeat the sign bit (bit 3).
    const high = b & 0x78;
    if (high !== 0 && high !== 0x78) throw new ModuleFormatError('LEB128 integer too large', start);
    this.pos = pos;
    return result | (b << 28);
  }

  /** Signed 33-bit integer (block types), returned as a plain number. */
  s33(): number {
    const pos0 = this.pos;
    if (pos0 < this.end) {
      const b = this.bytes[pos0];
      if (b < 0x80) {
        this.pos = pos0 + 1;
        return b & 0x40 ? b - 0x80 : b;
      }
    }
    const bytes = this.bytes;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 4; i++) {
      if (pos >= end) this.eof(pos);
      const b = bytes[pos++];
      result += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        this.pos = pos;
        return b & 0x40 ? result - scale : result;
      }
    }
    if (pos >= end) this.eof(pos);
    const b = bytes[pos++];
    if (b & 0x80) throw new ModuleFormatError('LEB128 integer too long', start);
    // Bits 5-6 of the last byte must repeat the sign bit (bit 4).
    const high = b & 0x70;
    if (high !== 0 && high !== 0x70) throw new ModuleFormatError('LEB128 integer too large', start);
    this.pos = pos;
    result += (b & 0x1f) * scale;
    return b & 0x10 ? result - 2 ** 33 : result;
  }

  /** Validate and skip a signed 64-bit LEB128 integer without building its value. */
  skipS64(): void {
    const bytes = this.bytes;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    for (let i = 0; i < 9; i++) {
      if (pos >= end) this.eof(pos);
      if (bytes[pos++] < 0x80) {
        this.pos = pos;
        return;
      }
    }
    if (pos >= end) this.eof(pos);
    const b = bytes[pos++];
    if (b & 0x80) throw new ModuleFormatError('LEB128 integer too long', start);
    // One payload bit remains; the others must repeat it.
    if (b !== 0 && b !== 0x7f) throw new ModuleFormatError('LEB128 integer too large', start);
    this.pos = pos;
  }

  s64(): bigint {
    const start = this.pos;
    this.skipS64();
    let result = 0n;
    let shift = 0n;
    let b = 0;
    for (let pos = start; pos < this.pos; pos++) {
      b = this.bytes[pos];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    }
    return BigInt.asIntN(64, b & 0x40 && shift < 64n ? result - (1n << shift) : result);
  }

  /** Read a vector length, checked against the bytes left (each element takes at least minSize bytes). */
  count(minSize = 1): number {
    const at = this.pos;
    const n = this.u32();
    if (n * minSize > this.end - this.pos) {
      throw new ModuleFormatError(`vector length ${n} exceeds the remaining ${this.end - this.pos} bytes of the ${this.what}`, at);
    }
    return n;
  }

  /** Read a byte-vector length and return the start of its bytes, skipping them. */
  byteVector(): number {
    const at = this.pos;
    const n = this.u32();
    if (n > this.end - this.pos) {
      throw new ModuleFormatError(`length ${n} out of bounds of the ${this.what}`, at);
    }
    const start = this.pos;
    this.pos += n;
    return start;
  }

  name(): string {
    const start = this.byteVector();
    return decodeName(this.bytes, start, this.pos);
  }
}

export function u32Length(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Growable output buffer with LEB128 encoders. */
export class Writer {
  buf: Uint8Array<ArrayBuffer>;
  len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.len + need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  ensure(n: number): void {
    if (this.len + n > this.buf.length) this.grow(n);
  }

  u8(b: number): void {
    if (this.len >= this.buf.length) this.grow(1);
    this.buf[this.len++] = b;
  }

  u32(v: number): void {
    if (this.len + 5 > this.buf.length) this.grow(5);
    const buf = this.buf;
    let len = this.len;
    v >>>= 0;
    while (v >= 0x80) {
      buf[len++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[len++] = v;
    this.len = len;
  }

  s32(v: number): void {
    if (this.len + 5 > this.buf.length) this.grow(5);
    const buf = this.buf;
    let len = this.len;
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        buf[len++] = b;
        break;
      }
      buf[len++] = b | 0x80;
    }
    this.len = len;
  }

  s64(v: bigint): void {
    v = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        this.u8(b);
        return;
      }
      this.u8(b | 0x80);
    }
  }

  /** Append src[start, end). */
  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    if (n <= 0) return;
    if (this.len + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    if (n < 24) {
      // Avoid a subarray view for the many short copies between rewritten immediates.
      let len = this.len;
      for (let i = start; i < end; i++) buf[len++] = src[i];
      this.len = len;
    } else {
      buf.set(src.subarray(start, end), this.len);
      this.len += n;
    }
  }

  name(s: string): void {
    const b = utf8Encoder.encode(s);
    this.u32(b.length);
    this.bytes(b);
  }

  /** Reserve room for a u32 size prefix; pass the result to endSize() once the sized content is written. */
  beginSize(): number {
    this.ensure(5);
    const mark = this.len;
    this.len += 5;
    return mark;
  }

  /** Write the minimal LEB128 size of everything after the mark and close the gap. */
  endSize(mark: number): void {
    const contentStart = mark + 5;
    const size = this.len - contentStart;
    const n = u32Length(size);
    const buf = this.buf;
    let v = size;
    let p = mark;
    for (let i = 1; i < n; i++) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    if (n < 5) {
      buf.copyWithin(p, contentStart, this.len);
      this.len -= 5 - n;
    }
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.len);
  }
}
