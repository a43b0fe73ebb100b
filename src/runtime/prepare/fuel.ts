// Fuel instrumentation: make every program preemptible by counting executed
// instructions in a global and calling the host when the count runs out.
//
// The rewrite works on the binary directly (no Binaryen): sections that need
// no change are copied byte for byte, code bodies are copied between the few
// points that change (function index immediates, loop headers).
//
// Contract (the engine relies on it):
// - import gate_engine.tick: () -> i32, appended as the last import (new type
//   appended to the type section); defined functions shift by one index.
// - global (mut i32) = 0 appended to the globals, exported as "gate_engine.fuel".
// - at every function entry (except bounded leaves) and loop header:
//     global.get $fuel; i32.const C; i32.sub; global.set $fuel;
//     global.get $fuel; i32.const 0; i32.lt_s;
//     if; call $tick; global.set $fuel; end
//   where C is the number of instructions in the region the check guards.

import { ModuleFormatError, Reader, Writer } from '../wasm/binary.ts';
import { CodeReader, Op } from '../wasm/instructions.ts';
import { parseModule, SectionId, SECTION_ORDER, type ModuleInfo, type SectionInfo } from '../wasm/module.ts';
import { ENGINE_MODULE, FUEL_EXPORT, RESERVED_PREFIX, TICK_IMPORT } from './names.ts';

/** Largest cost charged by one check. */
export const MAX_CHECK_COST = 1_000_000;

const KIND_FUNC = 0;
const KIND_GLOBAL = 3;
const TYPE_I32 = 0x7f;

// Rewrite points in a code body.
const POINT_LOOP = 0;
const POINT_FUNC_INDEX = 1;

class FuelRewriter {
  readonly bytes: Uint8Array;
  readonly info: ModuleInfo;
  readonly out: Writer;
  readonly reader: CodeReader;
  /** Index of the tick import = number of imported functions of the input. */
  readonly tick: number;
  readonly fuelGlobal: number;
  readonly tickType: number;
  /** Instruction count of each bounded leaf, by function index; -1 for other functions. */
  readonly leafCost: Float64Array;
  readonly checkHead: Uint8Array;
  readonly checkTail: Uint8Array;

  // Scratch state for one body, reused across bodies.
  private pointKind: number[] = [];
  private pointStart: number[] = [];
  private pointEnd: number[] = [];
  private pointValue: number[] = [];
  private loopCost: number[] = [];
  private blockIsLoop: number[] = [];
  private regionCost: number[] = [];
  private regionLoop: number[] = [];

  constructor(bytes: Uint8Array, info: ModuleInfo) {
    this.bytes = bytes;
    this.info = info;
    this.out = new Writer(bytes.length + (bytes.length >> 2) + 256);
    this.reader = new CodeReader(bytes);
    this.tick = info.importedFunctions;
    this.fuelGlobal = info.importedGlobals + info.globals.length;
    this.tickType = info.types.length;

    const imported = info.importedFunctions;
    this.leafCost = new Float64Array(imported + info.code.length).fill(-1);
    info.code.forEach((body, i) => {
      if (body.loops === 0 && body.calls === 0) this.leafCost[imported + i] = body.instructionCount;
    });

    const head = new Writer(16);
    head.u8(Op.GlobalGet);
    head.u32(this.fuelGlobal);
    head.u8(Op.I32Const);
    this.checkHead = head.finish();
    const tail = new Writer(32);
    tail.u8(Op.I32Sub);
    tail.u8(Op.GlobalSet);
    tail.u32(this.fuelGlobal);
    tail.u8(Op.GlobalGet);
    tail.u32(this.fuelGlobal);
    tail.u8(Op.I32Const);
    tail.u8(0);
    tail.u8(Op.I32LtS);
    tail.u8(Op.If);
    tail.u8(0x40);
    tail.u8(Op.Call);
    tail.u32(this.tick);
    tail.u8(Op.GlobalSet);
    tail.u32(this.fuelGlobal);
    tail.u8(Op.End);
    this.checkTail = tail.finish();
  }

  /** New index of a function of the input. */
  remap(f: number): number {
    return f < this.tick ? f : f + 1;
  }

  run(): Uint8Array<ArrayBuffer> {
    const { bytes, info, out } = this;
    out.bytes(bytes, 0, 8);
    const sections = info.sections;

    // Sections we must add when the input lacks them go right before the
    // first later non-custom section, or after the last non-custom one.
    const missing: { id: number; at: number }[] = [];
    for (const id of [SectionId.Type, SectionId.Import, SectionId.Global, SectionId.Export]) {
      if (sections.some((s) => s.id === id)) continue;
      let at = sections.findIndex((s) => s.id !== SectionId.Custom && SECTION_ORDER[s.id] > SECTION_ORDER[id]);
      if (at < 0) {
        at = 0;
        sections.forEach((s, i) => {
          if (s.id !== SectionId.Custom) at = i + 1;
        });
      }
      missing.push({ id, at });
    }

    for (let i = 0; i <= sections.length; i++) {
      for (const m of missing) if (m.at === i) this.section(m.id, undefined, -1);
      if (i < sections.length) this.section(sections[i].id, sections[i], i);
    }
    return out.finish();
  }

  private section(id: number, s: SectionInfo | undefined, index: number): void {
    const { bytes, out } = this;
    if (s && id === SectionId.Custom) {
      const custom = this.info.customs.find((c) => c.section === index);
      if (custom?.name === 'name') this.nameSection(s, custom.payload.start);
      else out.bytes(bytes, s.start, s.end);
      return;
    }
    const r = s ? new Reader(bytes, s.payloadStart, s.end, 'section') : undefined;
    const mark = () => {
      out.u8(id);
      return out.beginSize();
    };
    switch (id) {
      case SectionId.Type: {
        const m = mark();
        out.u32((r ? r.u32() : 0) + 1);
        if (r) out.bytes(bytes, r.pos, r.end);
        out.u8(0x60);
        out.u8(0);
        out.u8(1);
        out.u8(TYPE_I32);
        out.endSize(m);
        return;
      }
      case SectionId.Import: {
        const m = mark();
        out.u32((r ? r.u32() : 0) + 1);
        if (r) out.bytes(bytes, r.pos, r.end);
        out.name(ENGINE_MODULE);
        out.name(TICK_IMPORT);
        out.u8(KIND_FUNC);
        out.u32(this.tickType);
        out.endSize(m);
        return;
      }
      case SectionId.Global: {
        const m = mark();
        const globals = this.info.globals;
        out.u32(globals.length + 1);
        for (const g of globals) {
          if (g.funcRefs === 0) {
            out.bytes(bytes, g.range.start, g.range.end);
          } else {
            out.bytes(bytes, g.range.start, g.init.start);
            this.constExpr(g.init.start, g.init.end);
          }
        }
        out.u8(TYPE_I32);
        out.u8(1);
        out.u8(Op.I32Const);
        out.u8(0);
        out.u8(Op.End);
        out.endSize(m);
        return;
      }
      case SectionId.Export: {
        const m = mark();
        const n = r ? r.u32() : 0;
        out.u32(n + 1);
        for (let i = 0; i < n && r; i++) {
          const nameStart = r.pos;
          r.byteVector();
          out.bytes(bytes, nameStart, r.pos);
          const kind = r.u8();
          const index = r.u32();
          out.u8(kind);
          out.u32(kind === KIND_FUNC ? this.remap(index) : index);
        }
        out.name(FUEL_EXPORT);
        out.u8(KIND_GLOBAL);
        out.u32(this.fuelGlobal);
        out.endSize(m);
        return;
      }
      case SectionId.Start: {
        const m = mark();
        out.u32(this.remap(this.info.start ?? 0));
        out.endSize(m);
        return;
      }
      case SectionId.Element:
        return this.elementSection(mark());
      case SectionId.Code:
        return this.codeSection(mark());
      default:
        if (s) out.bytes(bytes, s.start, s.end);
    }
  }

  /** Copy the constant expression at `start` (up to its `end`), renumbering ref.func; returns its end. */
  private constExpr(start: number, limit: number): number {
    const { reader, out, bytes } = this;
    reader.reset(start, limit);
    let copied = start;
    for (;;) {
      const op = reader.next();
      if (op === Op.End) break;
      if (op === Op.RefFunc) {
        out.bytes(bytes, copied, reader.immStart);
        out.u32(this.remap(reader.index));
        copied = reader.pos;
      }
    }
    out.bytes(bytes, copied, reader.pos);
    return reader.pos;
  }

  private elementSection(m: number): void {
    const { out, bytes } = this;
    const segments = this.info.elements;
    out.u32(segments.length);
    const r = new Reader(bytes, 0, bytes.length, 'section');
    for (const seg of segments) {
      // Everything before the items (flags, table, offset, type, count) is
      // copied; the offset expression holds no function index (it is an i32).
      out.bytes(bytes, seg.range.start, seg.items.start);
      r.pos = seg.items.start;
      r.end = seg.items.end;
      if (seg.encoding === 'indices') {
        for (let i = 0; i < seg.count; i++) out.u32(this.remap(r.u32()));
      } else {
        let pos = seg.items.start;
        for (let i = 0; i < seg.count; i++) pos = this.constExpr(pos, seg.items.end);
      }
    }
    out.endSize(m);
  }

  private codeSection(m: number): void {
    const { out, bytes, info } = this;
    out.u32(info.code.length);
    for (let i = 0; i < info.code.length; i++) {
      const body = info.code[i];
      const size = out.beginSize();
      const leaf = this.leafCost[this.tick + i] >= 0;
      if (leaf && body.funcRefs === 0) out.bytes(bytes, body.range.start, body.range.end);
      else this.body(body.range.start, body.instructions, body.range.end, leaf);
      out.endSize(size);
    }
    out.endSize(m);
  }

  private check(cost: number): void {
    const out = this.out;
    out.bytes(this.checkHead);
    out.s32(Math.min(Math.max(cost, 1), MAX_CHECK_COST));
    out.bytes(this.checkTail);
  }

  /** Rewrite one body: instrument it unless it is a leaf, renumber function indices. */
  private body(start: number, instructions: number, end: number, leaf: boolean): void {
    const { reader, out, bytes, leafCost } = this;
    const { pointKind, pointStart, pointEnd, pointValue, loopCost, blockIsLoop, regionCost, regionLoop } = this;
    pointKind.length = 0;
    pointStart.length = 0;
    pointEnd.length = 0;
    pointValue.length = 0;
    loopCost.length = 0;

    // Pass 1: find rewrite points and the cost of every region. Region 0 is
    // the function outside loops; each loop opens a region of its own.
    reader.reset(instructions, end);
    let depth = 0;
    let top = 0;
    regionCost[0] = 0;
    regionLoop[0] = -1;
    for (;;) {
      const op = reader.next();
      if (op === Op.End) {
        if (depth === 0) break;
        depth--;
        if (blockIsLoop[depth]) {
          loopCost[regionLoop[top]] = regionCost[top];
          top--;
        }
        continue;
      }
      if (op === Op.Else) continue;
      regionCost[top]++;
      switch (op) {
        case Op.Block:
        case Op.If:
          blockIsLoop[depth++] = 0;
          break;
        case Op.Loop: {
          blockIsLoop[depth++] = 1;
          const loop = loopCost.length;
          loopCost.push(0);
          top++;
          regionCost[top] = 0;
          regionLoop[top] = loop;
          pointKind.push(POINT_LOOP);
          pointStart.push(reader.pos);
          pointEnd.push(reader.pos);
          pointValue.push(loop);
          break;
        }
        case Op.Call:
        case Op.ReturnCall:
        case Op.RefFunc:
          if (op === Op.Call) {
            const f = reader.index;
            if (f < leafCost.length && leafCost[f] > 0) regionCost[top] += leafCost[f];
          }
          pointKind.push(POINT_FUNC_INDEX);
          pointStart.push(reader.immStart);
          pointEnd.push(reader.pos);
          pointValue.push(this.remap(reader.index));
          break;
      }
    }
    if (reader.pos !== end) throw new ModuleFormatError('operators after the end of the function body', reader.pos);

    // Pass 2: copy with checks inserted and indices replaced.
    out.bytes(bytes, start, instructions);
    if (!leaf) this.check(regionCost[0]);
    let copied = instructions;
    for (let p = 0; p < pointKind.length; p++) {
      out.bytes(bytes, copied, pointStart[p]);
      if (pointKind[p] === POINT_LOOP) {
        this.check(loopCost[pointValue[p]]);
      } else {
        out.u32(pointValue[p]);
      }
      copied = pointEnd[p];
    }
    out.bytes(bytes, copied, end);
  }

  /**
   * Rewrite the name section: function names (1) and local names (2) get the
   * shifted indices, the module name (0) is kept, other subsections are
   * dropped. A malformed name section is dropped entirely.
   */
  private nameSection(s: SectionInfo, payloadStart: number): void {
    const { bytes, out } = this;
    const startLen = out.len;
    try {
      out.u8(SectionId.Custom);
      const m = out.beginSize();
      out.bytes(bytes, s.payloadStart, payloadStart);
      const r = new Reader(bytes, payloadStart, s.end, 'name section');
      let lastId = -1;
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
          out.u32(this.remap(sub.u32()));
          if (id === 1) {
            this.copyName(sub);
          } else {
            const locals = sub.count(2);
            out.u32(locals);
            for (let j = 0; j < locals; j++) {
              out.u32(sub.u32());
              this.copyName(sub);
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

  private copyName(r: Reader): void {
    const start = r.pos;
    r.byteVector();
    this.out.bytes(this.bytes, start, r.pos);
  }
}

/**
 * Return a copy of the module with fuel metering (see the contract above).
 * `info` must be parseModule(bytes) when given. Throws ModuleFormatError if the
 * module is malformed or already uses the engine's reserved names.
 */
export function addFuel(bytes: Uint8Array, info: ModuleInfo = parseModule(bytes)): Uint8Array<ArrayBuffer> {
  for (const imp of info.imports) {
    if (imp.module === ENGINE_MODULE) {
      throw new ModuleFormatError(`import module name "${ENGINE_MODULE}" is reserved (import "${imp.module}" "${imp.field}")`);
    }
  }
  for (const exp of info.exports) {
    if (exp.name.startsWith(RESERVED_PREFIX)) {
      throw new ModuleFormatError(`export name "${exp.name}" is reserved (prefix "${RESERVED_PREFIX}")`);
    }
  }
  return new FuelRewriter(bytes, info).run();
}
