// Minimal byte reader/writer for section-level surgery on modules that
// Binaryen produced (trusted input).

export class ByteReader {
  offset: number;
  private readonly bytes: Uint8Array;
  private readonly end: number;

  constructor(bytes: Uint8Array, offset = 0, end = bytes.byteLength) {
    this.bytes = bytes;
    this.offset = offset;
    this.end = end;
  }

  atEnd(): boolean {
    return this.offset >= this.end;
  }

  u8(): number {
    if (this.offset >= this.end) throw new Error('unexpected end of module');
    return this.bytes[this.offset++];
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
    }
    throw new Error('invalid LEB128');
  }

  skip(n: number): void {
    if (this.offset + n > this.end) throw new Error('unexpected end of module');
    this.offset += n;
  }
}

export class ByteWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;

  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.byteLength;
  }

  u8(v: number): void {
    this.bytes(Uint8Array.of(v));
  }

  u32(v: number): void {
    const out: number[] = [];
    do {
      let b = v & 0x7f;
      v = Math.floor(v / 128);
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    this.bytes(Uint8Array.from(out));
  }

  name(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u32(b.byteLength);
    this.bytes(b);
  }

  section(id: number, payload: Uint8Array): void {
    this.u8(id);
    this.u32(payload.byteLength);
    this.bytes(payload);
  }

  /** Copy a section (id, size and payload) from another module. */
  rawSection(from: Uint8Array, s: { id: number; start: number; end: number }): void {
    this.section(s.id, from.subarray(s.start, s.end));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  }
}
