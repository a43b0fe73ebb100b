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
// - at every function entry (except bounded leaves):
//     global.get $fuel; i32.const C; i32.sub; global.set $fuel;
//     global.get $fuel; i32.const 0; i32.lt_s;
//     if; call $tick; global.set $fuel; end
// - every loop whose block type is empty or one value type becomes
//     block BT                       ;; $exit
//       loop BT                      ;; $retry
//         block                      ;; $tick
//           loop BT                  ;; the original loop
//             global.get $fuel; i32.const C; i32.sub; global.set $fuel;
//             global.get $fuel; i32.const 0; i32.lt_s; br_if $tick
//             <body, branches out of the loop renumbered past the wrappers>
//           end
//           br $exit
//         end
//         call $tick; i32.const C; i32.add; global.set $fuel; br $retry
//       end
//     end
//   so the call to tick (the point where Asyncify may unwind) sits outside
//   the loop: a loop without other calls then runs free of Asyncify's
//   per-instruction bookkeeping, and after the tick the loop is re-entered at
//   its header, which is where it was. The header's decrement runs again on
//   re-entry, so the new budget is stored plus C: the iteration is charged
//   once, and a budget smaller than C cannot loop forever. Loops with a type-index block type
//   (parameters) keep the simple check at their header.
//   C is the number of instructions in the region the check guards.
// - before every bulk operation (memory.init/copy/fill, table.init/copy/fill,
//   table.grow), whose work grows with its length operand n (the top of the
//   stack), the length is charged and checked, with one scratch i32 local $n
//   appended to the function's locals:
//     local.tee $n; global.get $fuel; <units of $n>; i32.sub; global.set $fuel;
//     global.get $fuel; i32.const 0; i32.lt_s; if; call $tick; global.set $fuel; end
//   where the units are
//     memory: local.get $n; i32.const 3; i32.shr_u            (1 unit per 8 bytes)
//     tables: min($n, 2^26) << 4, that is local.get $n; i32.const 2^26;
//             local.get $n; i32.const 2^26; i32.lt_u; select; i32.const 4; i32.shl
//                                                            (16 units per element)
//   Both are below 2^30 for any operand, and the budget is at most a few
//   million when the charge is made, so the i32 counter cannot wrap around.
//   A function with a bulk operation is never a bounded leaf.
// - functions that may hold references across a call (reference-holders.ts)
//   keep their index but become wrappers:
//     global.get $n; i32.const 1; i32.add; global.set $n;
//     local.get 0 ... local.get P-1; call $inner;
//     global.get $n; i32.const 1; i32.sub; global.set $n
//   where $inner, appended after all other functions (in the same order),
//   has the original body, and $n is a second global (mut i32) = 0 exported
//   as "gate_engine.nounwind": the engine must not unwind while it is > 0.

import { ModuleFormatError, Reader, Writer } from '../wasm/binary.ts';
import { CodeReader, isBulkOp, isTableBulkOp, Op } from '../wasm/instructions.ts';
import { parseModule, SectionId, SECTION_ORDER, type ModuleInfo, type SectionInfo } from '../wasm/module.ts';
import { ENGINE_MODULE, FUEL_EXPORT, NO_UNWIND_EXPORT, RESERVED_PREFIX, TICK_IMPORT } from './names.ts';
import { referenceHolders } from './reference-holders.ts';

/** Largest cost charged by one check. */
export const MAX_CHECK_COST = 1_000_000;

/** Bulk memory operations are charged one unit per 2^MEMORY_BYTES_SHIFT bytes. */
export const MEMORY_BYTES_SHIFT = 3;
/** Bulk table operations are charged 2^TABLE_ELEMENT_SHIFT units per element... */
export const TABLE_ELEMENT_SHIFT = 4;
/** ...counting at most this many elements (an operation on more traps or fails before doing any work). */
export const TABLE_ELEMENTS_CHARGED = 1 << 26;

const KIND_FUNC = 0;
const KIND_GLOBAL = 3;
const TYPE_I32 = 0x7f;

// Rewrite points in a code body.
const POINT_LOOP = 0; // a loop with parameters: check inserted after its block type
const POINT_FUNC_INDEX = 1; // function index immediate replaced
const POINT_LOOP_OPEN = 2; // `loop BT` replaced by the wrappers and the loop with its check
const POINT_LOOP_CLOSE = 3; // the loop's `end` replaced by the end of the wrappers
const POINT_LABEL = 4; // branch label immediate replaced
const POINT_BR_TABLE = 5; // br_table label vector replaced
const POINT_BULK = 6; // length charge inserted before a bulk operation (value: 1 for tables)

/** Labels the wrappers put between a wrapped loop and the code around it. */
const WRAPPER_LABELS = 3;

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
  /** Code section positions of the wrapped functions (see the contract). */
  readonly holders: number[];
  readonly noUnwindGlobal: number;

  // Scratch state for one body, reused across bodies.
  private pointKind: number[] = [];
  private pointStart: number[] = [];
  private pointEnd: number[] = [];
  private pointValue: number[] = [];
  private loopCost: number[] = [];
  private blockIsLoop: number[] = [];
  /** Per open control frame: 1 if it is a wrapped loop. */
  private frameWrapped: number[] = [];
  /** Replacement label vectors of br_table points, by point. */
  private tables = new Map<number, number[]>();
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
    this.holders = referenceHolders(bytes, info);
    this.noUnwindGlobal = this.fuelGlobal + 1;

    const imported = info.importedFunctions;
    this.leafCost = new Float64Array(imported + info.code.length).fill(-1);
    info.code.forEach((body, i) => {
      if (body.loops === 0 && body.calls === 0 && body.bulk === 0) this.leafCost[imported + i] = body.instructionCount;
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
        out.u32(globals.length + (this.holders.length > 0 ? 2 : 1));
        for (const g of globals) {
          if (g.funcRefs === 0) {
            out.bytes(bytes, g.range.start, g.range.end);
          } else {
            out.bytes(bytes, g.range.start, g.init.start);
            this.constExpr(g.init.start, g.init.end);
          }
        }
        for (let i = this.holders.length > 0 ? 2 : 1; i > 0; i--) {
          out.u8(TYPE_I32);
          out.u8(1);
          out.u8(Op.I32Const);
          out.u8(0);
          out.u8(Op.End);
        }
        out.endSize(m);
        return;
      }
      case SectionId.Function: {
        if (this.holders.length === 0) break;
        const m = mark();
        const n = r!.u32();
        out.u32(n + this.holders.length);
        out.bytes(bytes, r!.pos, r!.end);
        for (const i of this.holders) out.u32(this.info.functions[i]);
        out.endSize(m);
        return;
      }
      case SectionId.Export: {
        const m = mark();
        const n = r ? r.u32() : 0;
        out.u32(n + (this.holders.length > 0 ? 2 : 1));
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
        if (this.holders.length > 0) {
          out.name(NO_UNWIND_EXPORT);
          out.u8(KIND_GLOBAL);
          out.u32(this.noUnwindGlobal);
        }
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
    }
    if (s) out.bytes(bytes, s.start, s.end);
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
    const { out, info, holders } = this;
    out.u32(info.code.length + holders.length);
    const wrapped = new Map(holders.map((i, k) => [i, k]));
    for (let i = 0; i < info.code.length; i++) {
      const k = wrapped.get(i);
      if (k !== undefined) this.wrapper(i, this.tick + 1 + info.code.length + k);
      else this.code(i);
    }
    for (const i of holders) this.code(i);
    out.endSize(m);
  }

  private code(i: number): void {
    const { out, bytes, info } = this;
    const body = info.code[i];
    const size = out.beginSize();
    const leaf = this.leafCost[this.tick + i] >= 0;
    if (leaf && body.funcRefs === 0) out.bytes(bytes, body.range.start, body.range.end);
    else this.body(i, body.instructions, body.range.end, leaf);
    out.endSize(size);
  }

  /** The body of wrapped function i: count it in, call its original body (function `inner`), count it out. */
  private wrapper(i: number, inner: number): void {
    const out = this.out;
    const params = this.info.types[this.info.functions[i]].params.length;
    const size = out.beginSize();
    out.u32(0); // no locals
    const add = (op: number) => {
      out.u8(Op.GlobalGet);
      out.u32(this.noUnwindGlobal);
      out.u8(Op.I32Const);
      out.u8(1);
      out.u8(op);
      out.u8(Op.GlobalSet);
      out.u32(this.noUnwindGlobal);
    };
    add(Op.I32Add);
    for (let p = 0; p < params; p++) {
      out.u8(Op.LocalGet);
      out.u32(p);
    }
    out.u8(Op.Call);
    out.u32(inner);
    // The results stay on the stack below the count's update.
    add(Op.I32Sub);
    out.u8(Op.End);
    out.endSize(size);
  }

  private check(cost: number): void {
    const out = this.out;
    out.bytes(this.checkHead);
    out.s32(Math.min(Math.max(cost, 1), MAX_CHECK_COST));
    out.bytes(this.checkTail);
  }

  private clampCost(cost: number): number {
    return Math.min(Math.max(cost, 1), MAX_CHECK_COST);
  }

  /** The fuel decrement and test common to both check forms. */
  private decrement(cost: number): void {
    const out = this.out;
    out.bytes(this.checkHead);
    out.s32(this.clampCost(cost));
    out.u8(Op.I32Sub);
    out.u8(Op.GlobalSet);
    out.u32(this.fuelGlobal);
    out.u8(Op.GlobalGet);
    out.u32(this.fuelGlobal);
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(Op.I32LtS);
  }

  /** Depth of a label after wrapping: each wrapped loop the branch leaves adds the wrappers' labels. */
  private relabel(depth: number, label: number): number {
    let extra = 0;
    for (let i = 0; i < label && i < depth; i++) {
      if (this.frameWrapped[depth - 1 - i]) extra += WRAPPER_LABELS;
    }
    return label + extra;
  }

  /**
   * The locals declaration of body i with one more i32 local appended;
   * returns that local's index.
   */
  private localsWithScratch(i: number): number {
    const { out, bytes, info } = this;
    const body = info.code[i];
    const r = new Reader(bytes, body.locals.start, body.locals.end, 'locals');
    const groups = r.u32();
    let declared = 0;
    out.u32(groups + 1);
    const first = r.pos;
    for (let g = 0; g < groups; g++) {
      declared += r.u32();
      r.u8();
    }
    out.bytes(bytes, first, body.locals.end);
    out.u8(1);
    out.u8(TYPE_I32);
    return info.types[info.functions[i]].params.length + declared;
  }

  /** Charge the length operand of a bulk operation (on the stack top) and check the budget; see the contract. */
  private bulkCharge(scratch: number, table: boolean): void {
    const out = this.out;
    const indexed = (op: number, index: number) => {
      out.u8(op);
      out.u32(index);
    };
    const constant = (value: number) => {
      out.u8(Op.I32Const);
      out.s32(value);
    };
    indexed(Op.LocalTee, scratch);
    indexed(Op.GlobalGet, this.fuelGlobal);
    indexed(Op.LocalGet, scratch);
    if (table) {
      // min(n, 2^26) << 4, with n unsigned.
      constant(TABLE_ELEMENTS_CHARGED);
      indexed(Op.LocalGet, scratch);
      constant(TABLE_ELEMENTS_CHARGED);
      out.u8(Op.I32LtU);
      out.u8(Op.Select);
      constant(TABLE_ELEMENT_SHIFT);
      out.u8(Op.I32Shl);
    } else {
      constant(MEMORY_BYTES_SHIFT);
      out.u8(Op.I32ShrU);
    }
    out.bytes(this.checkTail);
  }

  /** Rewrite body i: instrument it unless it is a leaf, renumber function indices. */
  private body(i: number, instructions: number, end: number, leaf: boolean): void {
    const start = this.info.code[i].locals.start;
    const { reader, out, bytes, leafCost } = this;
    const { pointKind, pointStart, pointEnd, pointValue, loopCost, blockIsLoop, frameWrapped, regionCost, regionLoop } =
      this;
    pointKind.length = 0;
    pointStart.length = 0;
    pointEnd.length = 0;
    pointValue.length = 0;
    loopCost.length = 0;
    this.tables.clear();

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
          const loop = regionLoop[top];
          loopCost[loop] = regionCost[top];
          top--;
          if (frameWrapped[depth]) {
            pointKind.push(POINT_LOOP_CLOSE);
            pointStart.push(reader.start);
            pointEnd.push(reader.pos);
            pointValue.push(loop);
          }
        }
        continue;
      }
      if (op === Op.Else) continue;
      regionCost[top]++;
      switch (op) {
        case Op.Block:
        case Op.If:
          frameWrapped[depth] = 0;
          blockIsLoop[depth++] = 0;
          break;
        case Op.Loop: {
          // Block type: negative = empty or one value type; >= 0 = type index.
          const wrapped = reader.index < 0 ? 1 : 0;
          frameWrapped[depth] = wrapped;
          blockIsLoop[depth++] = 1;
          const loop = loopCost.length;
          loopCost.push(0);
          top++;
          regionCost[top] = 0;
          regionLoop[top] = loop;
          pointKind.push(wrapped ? POINT_LOOP_OPEN : POINT_LOOP);
          pointStart.push(wrapped ? reader.start : reader.pos);
          pointEnd.push(reader.pos);
          pointValue.push(loop);
          break;
        }
        case Op.Br:
        case Op.BrIf: {
          const label = this.relabel(depth, reader.index);
          if (label !== reader.index) {
            pointKind.push(POINT_LABEL);
            pointStart.push(reader.immStart);
            pointEnd.push(reader.pos);
            pointValue.push(label);
          }
          break;
        }
        case Op.BrTable: {
          const r = new Reader(bytes, reader.immStart, reader.pos, 'br_table');
          const n = r.u32();
          const labels: number[] = [];
          let changed = false;
          for (let i = 0; i <= n; i++) {
            const old = r.u32();
            const label = this.relabel(depth, old);
            changed ||= label !== old;
            labels.push(label);
          }
          if (changed) {
            this.tables.set(pointKind.length, labels);
            pointKind.push(POINT_BR_TABLE);
            pointStart.push(reader.immStart);
            pointEnd.push(reader.pos);
            pointValue.push(0);
          }
          break;
        }
        case Op.PrefixMisc:
          if (isBulkOp(reader.sub)) {
            pointKind.push(POINT_BULK);
            pointStart.push(reader.start);
            pointEnd.push(reader.start);
            pointValue.push(isTableBulkOp(reader.sub) ? 1 : 0);
          }
          break;
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

    // Pass 2: copy with checks inserted and immediates replaced.
    const scratch = this.info.code[i].bulk > 0 ? this.localsWithScratch(i) : -1;
    if (scratch < 0) out.bytes(bytes, start, instructions);
    if (!leaf) this.check(regionCost[0]);
    let copied = instructions;
    for (let p = 0; p < pointKind.length; p++) {
      out.bytes(bytes, copied, pointStart[p]);
      switch (pointKind[p]) {
        case POINT_LOOP:
          this.check(loopCost[pointValue[p]]);
          break;
        case POINT_LOOP_OPEN: {
          // pointStart..pointEnd is `loop BT`: reuse its block type bytes.
          const blockType = bytes.subarray(pointStart[p] + 1, pointEnd[p]);
          out.u8(Op.Block);
          out.bytes(blockType);
          out.u8(Op.Loop);
          out.bytes(blockType);
          out.u8(Op.Block);
          out.u8(0x40);
          out.u8(Op.Loop);
          out.bytes(blockType);
          this.decrement(loopCost[pointValue[p]]);
          out.u8(Op.BrIf);
          out.u8(1); // $tick
          break;
        }
        case POINT_LOOP_CLOSE:
          out.u8(Op.End); // the original loop
          out.u8(Op.Br);
          out.u8(2); // $exit
          out.u8(Op.End); // $tick
          out.u8(Op.Call);
          out.u32(this.tick);
          out.u8(Op.I32Const);
          out.s32(this.clampCost(loopCost[pointValue[p]]));
          out.u8(Op.I32Add);
          out.u8(Op.GlobalSet);
          out.u32(this.fuelGlobal);
          out.u8(Op.Br);
          out.u8(0); // $retry
          out.u8(Op.End); // $retry
          out.u8(Op.End); // $exit
          break;
        case POINT_LABEL:
          out.u32(pointValue[p]);
          break;
        case POINT_BULK:
          this.bulkCharge(scratch, pointValue[p] === 1);
          break;
        case POINT_BR_TABLE: {
          const labels = this.tables.get(p)!;
          out.u32(labels.length - 1);
          for (const label of labels) out.u32(label);
          break;
        }
        default:
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
