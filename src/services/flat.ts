// A small FlatBuffers codec for the localhost service's schema (Gate's
// localhost.fbs): tables Call {function: Function}, union Function {Request},
// Request {method, uri, content_type: string; body: [ubyte]}, Response
// {status_code: uint16; content_type: string; body: [ubyte]}.
//
// Hand-written instead of the flatbuffers package because the call buffers
// come from untrusted programs: every offset is bounds-checked here (the
// package's readers do not verify), and only these few tables are needed.

/** The input is not a well-formed buffer for the expected table. */
export class FlatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlatError';
  }
}

export interface LocalRequest {
  readonly method: string;
  readonly uri: string;
  readonly contentType: string;
  readonly body: Uint8Array;
}

export interface LocalResponse {
  readonly statusCode: number;
  /** Empty: absent. */
  readonly contentType?: string;
  /** Empty: absent. */
  readonly body?: Uint8Array;
}

/** Union tag of Call.function (0 is none). */
export const FUNCTION_REQUEST = 1;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A table's field accessors over a verified region. */
class Table {
  readonly #v: DataView;
  readonly #pos: number;
  readonly #vtable: number;
  readonly #vtableSize: number;
  readonly #size: number;

  constructor(v: DataView, pos: number) {
    const len = v.byteLength;
    if (pos < 0 || pos + 4 > len) throw new FlatError('table out of bounds');
    const vtable = pos - v.getInt32(pos, true);
    if (vtable < 0 || vtable + 4 > len) throw new FlatError('vtable out of bounds');
    const vtableSize = v.getUint16(vtable, true);
    const size = v.getUint16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0 || vtable + vtableSize > len) throw new FlatError('bad vtable');
    if (size < 4 || pos + size > len) throw new FlatError('bad table size');
    this.#v = v;
    this.#pos = pos;
    this.#vtable = vtable;
    this.#vtableSize = vtableSize;
    this.#size = size;
  }

  /** Absolute position of field slot, or 0 when absent; checks it lies inside the table. */
  #field(slot: number, width: number): number {
    const entry = 4 + 2 * slot;
    if (entry + 2 > this.#vtableSize) return 0;
    const off = this.#v.getUint16(this.#vtable + entry, true);
    if (off === 0) return 0;
    if (off < 4 || off + width > this.#size) throw new FlatError('field out of bounds');
    return this.#pos + off;
  }

  u8(slot: number): number {
    const p = this.#field(slot, 1);
    return p === 0 ? 0 : this.#v.getUint8(p);
  }

  u16(slot: number): number {
    const p = this.#field(slot, 2);
    return p === 0 ? 0 : this.#v.getUint16(p, true);
  }

  /** Target of an offset field, or -1 when absent. */
  #ref(slot: number): number {
    const p = this.#field(slot, 4);
    if (p === 0) return -1;
    const target = p + this.#v.getUint32(p, true);
    if (target + 4 > this.#v.byteLength) throw new FlatError('reference out of bounds');
    return target;
  }

  bytes(slot: number): Uint8Array {
    const t = this.#ref(slot);
    if (t < 0) return new Uint8Array(0);
    const n = this.#v.getUint32(t, true);
    if (t + 4 + n > this.#v.byteLength) throw new FlatError('vector out of bounds');
    return new Uint8Array(this.#v.buffer, this.#v.byteOffset + t + 4, n).slice();
  }

  string(slot: number): string {
    return decoder.decode(this.bytes(slot));
  }

  table(slot: number): Table | null {
    const t = this.#ref(slot);
    return t < 0 ? null : new Table(this.#v, t);
  }
}

function root(buf: Uint8Array): Table {
  if (buf.length < 8) throw new FlatError('buffer too short');
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return new Table(v, v.getUint32(0, true));
}

/** The Request of a Call buffer; null when the union holds nothing else. Throws FlatError. */
export function decodeCall(buf: Uint8Array): LocalRequest | null {
  const call = root(buf);
  if (call.u8(0) !== FUNCTION_REQUEST) return null;
  const req = call.table(1);
  if (req === null) return null;
  return { method: req.string(0), uri: req.string(1), contentType: req.string(2), body: req.bytes(3) };
}

export function decodeResponse(buf: Uint8Array): LocalResponse {
  const res = root(buf);
  return { statusCode: res.u16(0), contentType: res.string(1), body: res.bytes(2) };
}

// ---------------------------------------------------------------------------
// Encoding. Objects are laid out front to back: root offset, then each
// table's vtable and table, then what the table refers to (FlatBuffers
// offsets point forward, so referenced objects must come later).

type Field =
  | { readonly slot: number; readonly u8: number }
  | { readonly slot: number; readonly u16: number }
  | { readonly slot: number; readonly ref: (w: Writer) => number };

class Writer {
  buf = new Uint8Array(256);
  len = 0;

  #grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  get view(): DataView {
    return new DataView(this.buf.buffer);
  }

  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.#grow(pad);
    this.len += pad; // the buffer is zero-filled
  }

  skip(n: number): number {
    this.#grow(n);
    const at = this.len;
    this.len += n;
    return at;
  }

  bytes(b: Uint8Array): void {
    this.#grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

function vector(data: Uint8Array, nul: boolean): (w: Writer) => number {
  return (w) => {
    w.align(4);
    const at = w.skip(4);
    w.view.setUint32(at, data.length, true);
    w.bytes(data);
    if (nul) w.skip(1); // strings end with a zero byte
    return at;
  };
}

function table(fields: readonly Field[]): (w: Writer) => number {
  return (w) => {
    const slots = fields.reduce((m, f) => Math.max(m, f.slot + 1), 0);
    w.align(2);
    const vt = w.skip(4 + 2 * slots);
    w.align(4);
    const pos = w.skip(4);
    // Widest fields first keeps every field aligned without padding.
    const order = [...fields].sort((a, b) => width(b) - width(a));
    const refs: { at: number; ref: (w: Writer) => number }[] = [];
    for (const f of order) {
      const at = w.skip(width(f));
      w.view.setUint16(vt + 4 + 2 * f.slot, at - pos, true);
      if ('u8' in f) w.view.setUint8(at, f.u8);
      else if ('u16' in f) w.view.setUint16(at, f.u16, true);
      else refs.push({ at, ref: f.ref });
    }
    w.view.setUint16(vt, 4 + 2 * slots, true);
    w.view.setUint16(vt + 2, w.len - pos, true);
    w.view.setInt32(pos, pos - vt, true);
    for (const r of refs) {
      const target = r.ref(w);
      w.view.setUint32(r.at, target - r.at, true);
    }
    return pos;
  };
}

function width(f: Field): number {
  return 'u8' in f ? 1 : 'u16' in f ? 2 : 4;
}

function finish(rootTable: (w: Writer) => number): Uint8Array {
  const w = new Writer();
  w.skip(4);
  const pos = rootTable(w);
  w.view.setUint32(0, pos, true);
  w.align(4);
  return w.buf.slice(0, w.len);
}

/** Response with the non-empty fields set (as Gate's builder does). */
export function encodeResponse(r: LocalResponse): Uint8Array {
  const fields: Field[] = [{ slot: 0, u16: r.statusCode }];
  if (r.contentType) fields.push({ slot: 1, ref: vector(encoder.encode(r.contentType), true) });
  if (r.body && r.body.length > 0) fields.push({ slot: 2, ref: vector(r.body, false) });
  return finish(table(fields));
}

/** A Call holding a Request (what a program sends). Empty strings and body are left out. */
export function encodeCall(r: Partial<LocalRequest>): Uint8Array {
  const fields: Field[] = [];
  if (r.method) fields.push({ slot: 0, ref: vector(encoder.encode(r.method), true) });
  if (r.uri) fields.push({ slot: 1, ref: vector(encoder.encode(r.uri), true) });
  if (r.contentType) fields.push({ slot: 2, ref: vector(encoder.encode(r.contentType), true) });
  if (r.body && r.body.length > 0) fields.push({ slot: 3, ref: vector(r.body, false) });
  return finish(table([{ slot: 0, u8: FUNCTION_REQUEST }, { slot: 1, ref: table(fields) }]));
}

/** A Call whose union holds nothing. */
export function encodeEmptyCall(): Uint8Array {
  return finish(table([]));
}
