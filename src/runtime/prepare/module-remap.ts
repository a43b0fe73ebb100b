// Copying module parts whose function indices shift when the rewrite adds
// imported functions: constant expressions (ref.func), element segments and
// the name section. Everything else is copied byte for byte.

import { ModuleFormatError, Reader, type Writer } from '../wasm/binary.ts';
import { CodeReader, Op } from '../wasm/instructions.ts';
import type { ModuleInfo, SectionInfo } from '../wasm/module.ts';

export type Remap = (f: number) => number;

/** Copy the constant expression at `start` (up to its `end`) with ref.func renumbered; returns its end. */
export function copyConstExpr(out: Writer, bytes: Uint8Array, reader: CodeReader, start: number, limit: number, remap: Remap): number {
  reader.reset(start, limit);
  let copied = start;
  for (;;) {
    const op = reader.next();
    if (op === Op.End) break;
    if (op === Op.RefFunc) {
      out.bytes(bytes, copied, reader.immStart);
      out.u32(remap(reader.index));
      copied = reader.pos;
    }
  }
  out.bytes(bytes, copied, reader.pos);
  return reader.pos;
}

/** The element segments' entries (after the count), renumbered. */
export function copyElementSegments(out: Writer, bytes: Uint8Array, info: ModuleInfo, remap: Remap): void {
  const reader = new CodeReader(bytes);
  const r = new Reader(bytes, 0, bytes.length, 'section');
  for (const seg of info.elements) {
    // Everything before the items (flags, table, offset, type, count) is copied;
    // the offset expression holds no function index (it is an i32).
    out.bytes(bytes, seg.range.start, seg.items.start);
    r.pos = seg.items.start;
    r.end = seg.items.end;
    if (seg.encoding === 'indices') {
      for (let i = 0; i < seg.count; i++) out.u32(remap(r.u32()));
    } else {
      let pos = seg.items.start;
      for (let i = 0; i < seg.count; i++) pos = copyConstExpr(out, bytes, reader, pos, seg.items.end, remap);
    }
  }
}

/** The globals' entries (after the count), with ref.func initializers renumbered. */
export function copyGlobals(out: Writer, bytes: Uint8Array, info: ModuleInfo, remap: Remap): void {
  const reader = new CodeReader(bytes);
  for (const g of info.globals) {
    if (g.funcRefs === 0) {
      out.bytes(bytes, g.range.start, g.range.end);
    } else {
      out.bytes(bytes, g.range.start, g.init.start);
      copyConstExpr(out, bytes, reader, g.init.start, g.init.end, remap);
    }
  }
}

/**
 * Rewrite the name section: function names (1) and local names (2) get the
 * shifted indices, the module name (0) is kept, other subsections are
 * dropped. A malformed name section is dropped entirely.
 */
export function copyNameSection(out: Writer, bytes: Uint8Array, s: SectionInfo, payloadStart: number, remap: Remap): void {
  const startLen = out.len;
  try {
    out.u8(0);
    const m = out.beginSize();
    out.bytes(bytes, s.payloadStart, payloadStart);
    const r = new Reader(bytes, payloadStart, s.end, 'name section');
    let lastId = -1;
    const copyName = (from: Reader): void => {
      const start = from.pos;
      from.byteVector();
      out.bytes(bytes, start, from.pos);
    };
    while (!r.atEnd()) {
      const id = r.u8();
      if (id <= lastId) throw new ModuleFormatError('name subsections out of order', r.pos - 1);
      lastId = id;
      const size = r.u32();
      if (size > r.remaining()) r.eof();
      const sub = new Reader(bytes, r.pos, r.pos + size, 'name subsection');
      r.pos += size;
      if (id === 0) {
        out.u8(0);
        out.u32(size);
        out.bytes(bytes, sub.pos, sub.end);
        continue;
      }
      if (id !== 1 && id !== 2) continue;
      out.u8(id);
      const sm = out.beginSize();
      const n = sub.count(2);
      out.u32(n);
      for (let i = 0; i < n; i++) {
        out.u32(remap(sub.u32()));
        if (id === 1) {
          copyName(sub);
        } else {
          const locals = sub.count(2);
          out.u32(locals);
          for (let j = 0; j < locals; j++) {
            out.u32(sub.u32());
            copyName(sub);
          }
        }
      }
      if (!sub.atEnd()) throw new ModuleFormatError('name subsection size mismatch', sub.pos);
      out.endSize(sm);
    }
    out.endSize(m);
  } catch (error) {
    if (!(error instanceof ModuleFormatError)) throw error;
    out.len = startLen;
  }
}
