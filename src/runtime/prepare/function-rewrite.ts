// The per-function part of the rewrite (docs/engine.md): two linear passes
// over a body. The first tracks the operand stack and the block structure,
// numbers the call sites Gate's way, and finds the points where the function
// can be suspended ("sites"): calls that may suspend, loop headers (fuel
// checks), bulk operations (fuel charged by length). The second copies the
// body with
//
// - a fuel check at the entry and at every loop header, a charge before
//   every bulk operation;
// - around the whole body a `try` whose handler, when the engine's unwind
//   exception passes, appends this frame to the saved stack (which site, the
//   operand values below the call's arguments, the locals, then the
//   function's own parameters into its caller's slots) and rethrows;
// - at the start of every block level that contains sites, a dispatch that,
//   when the frame is being rewound, jumps over the code before the site
//   with the saved operand values pushed: into nested blocks (with dummy
//   block parameters and a forced `if` condition) down to the site itself,
//   where the call is made again (and the callee rewinds in turn) or the
//   fuel check ends the rewind. The normal path through a dispatch costs one
//   local test; values the handler needs that sit below a block or below a
//   call's arguments are copied into locals on the normal path.
//
// The frame record is Gate's portable stack frame: its site is Gate's call
// index (converted by the host, see stack-frames.ts), its values are the
// wasm operand stack at the site and the function's non-parameter locals.

import { Writer } from '../wasm/binary.ts';
import { CodeReader, Op, MiscOp } from '../wasm/instructions.ts';
import type { ModuleInfo } from '../wasm/module.ts';
import type { CallGraph } from './call-graph.ts';
import { countedLoop } from './counted-loop.ts';
import { isBulk } from './call-graph.ts';
import { instructionSites } from './call-sites.ts';
import { EXTERNREF, F32, F64, FUNCREF, I32, I64, MISC, SIMD, SINGLE, UNKNOWN, V128, type Effect } from './operand-types.ts';
import type { TypeTable } from './type-table.ts';

/** Site kinds. */
export const SITE_ENTRY = 0;
export const SITE_CALL = 1;
export const SITE_INDIRECT = 2;
export const SITE_LOOP = 3;
export const SITE_BULK = 4;

/** A point where the function can be suspended, by key (its number within the function; 0 is the entry). */
export interface SiteInfo {
  kind: number;
  /** Gate call-site ordinal within the function (0 is the entry), or -1 for a site Gate does not have. */
  wag: number;
  /** Ordinal among this function's sites that Gate does not have, or -1. */
  extra: number;
  /** Operand values the frame holds at the site, bottom to top (a call's arguments included, a call_indirect's table index not). */
  types: number[];
  /** Callee function index (call), type index (call_indirect), 0xFC sub-opcode (bulk). */
  target: number;
  /** How many of the top values are the callee's parameters (the callee saves those itself). */
  calleeParams: number;
  /** Other Gate call-site ordinals that resume here (further back-edge checks of the same loop). */
  aliases: number[];
}

/** memory.fill/copy/init charge their length in bytes shifted right by this: 1 unit per 8 bytes. */
export const BULK_BYTES_SHIFT = 3;
/** table.fill/copy/init/grow charge min(length, BULK_ELEMENTS_MAX) << BULK_ELEMENT_SHIFT: 16 units per element. */
export const BULK_ELEMENT_SHIFT = 4;
export const BULK_ELEMENTS_MAX = 1 << 26;
/** Largest cost charged by one check. */
export const MAX_CHECK_COST = 1_000_000;

/**
 * Units a region may be charged for the counted loops in it (counted-loop.ts),
 * which run without checks of their own: the work between two checks stays
 * bounded by this plus the region's own code.
 */
export const COUNTED_LOOP_BUDGET = 200_000;

export interface EngineIndexes {
  tick: number;
  frame: number;
  mark: number;
  begin: number;
  callee: number;
  /** save/load functions by value type code. */
  save: Readonly<Record<number, number>>;
  load: Readonly<Record<number, number>>;
  tag: number;
  fuel: number;
  /** The rewind table (all functions a table can hold), or -1 when the module needs none. */
  rewindTable: number;
}

export interface RewriteContext {
  bytes: Uint8Array;
  info: ModuleInfo;
  graph: CallGraph;
  types: TypeTable;
  /** Value type code of every global (imports first). */
  globalTypes: readonly number[];
  /** Element type code of every table (imports first). */
  tableTypes: readonly number[];
  engine: EngineIndexes;
  /** New index of a function of the input. */
  remap(f: number): number;
  /** Every call is a resumable site (to resume a foreign stack anywhere). */
  everything: boolean;
  /** The global that records a drop of this passive data (or element) segment, or -1. */
  droppedFlag(kind: 'data' | 'elem', segment: number): number;
}

// Entry kinds (points in a block level where a rewind dispatch lands).
const E_CALL = 1;
const E_INDIRECT = 2;
const E_STRUCT = 3;
const E_BULK = 4;
const E_LOOP = 5;

interface Entry {
  kind: number;
  /** Input offset of the entry's instruction (call, opener, bulk operation); -1 for a loop's check. */
  at: number;
  /** The level's operand values at the entry, bottom to top, including those the instruction consumes. */
  types: number[];
  /** Stack position of types[0]. */
  base: number;
  /** How many of the top values the instruction consumes (call arguments; block parameters and condition). */
  consumed: number;
  keyLo: number;
  keyHi: number;
  /** `if` structures: last key of the then arm (-1: none) and first of the else arm (-1: none). */
  isIf: boolean;
  thenHi: number;
  elseLo: number;
  /** Site entries: the site's key. */
  key: number;
  /**
   * Nothing before it in its level and nothing to push: a rewind reaches it
   * by running on from the level's start, so it needs no D block.
   */
  fallsThrough: boolean;
}

/** A level in a combined rewind dispatch: its D blocks start at label depth dBase from inside the dispatch's `if`. */
interface DispatchPart {
  level: Level;
  skip: number;
  nD: number;
  dBase: number;
}

interface Level {
  params: readonly number[];
  /**
   * A loop whose only site is its fuel check (no params): it counts fuel in
   * a local while it runs, written back to the global wherever it is left.
   */
  localFuel: boolean;
  /** Input offset of the level's first instruction. */
  bodyAt: number;
  entries: Entry[];
  keyLo: number;
  keyHi: number;
}

const F_FUNC = 0;
const F_BLOCK = 1;
const F_LOOP = 2;
const F_IF = 3;

interface Frame {
  kind: number;
  params: readonly number[];
  results: readonly number[];
  height: number;
  unreachable: boolean;
  dead: boolean;
  /** Gate's flag: a suspension point was passed in this block. */
  passed: boolean;
  level: Level | null;
  /** Opener ordinal, input offset, and the parent level's values at the opener. */
  opener: number;
  openerAt: number;
  openerTypes: number[];
  entry: Entry | null;
  inElse: boolean;
  /** Fuel region (function entry region or a loop's). */
  region: number;
  /** Loops: the key of the check, and Gate's first back-edge ordinal. */
  loopKey: number;
}

/** Per instrumented function: what the first pass found. */
interface Plan {
  sites: SiteInfo[];
  level0: Level;
  thenLevels: (Level | undefined)[];
  elseLevels: (Level | undefined)[];
  regionCost: number[];
  /** Fuel region of each live loop, by opener ordinal. */
  loopRegion: (number | undefined)[];
  /** The local that innermost loops count fuel in (-1: none needs it). */
  fuelLocal: number;
  localTypes: number[];
  params: number;
  results: readonly number[];
  /** Locals added by the rewrite, by type; indices start at localTypes.length. */
  added: number[];
  siteLocal: number;
  rewindLocal: number;
  spills: Map<number, number>;
  temps: Map<number, number>;
}

const noTypes: readonly number[] = [];

// Opcodes the decoder's table does not name: a few numeric ones, and the
// exception-handling instructions the rewrite adds (refused in programs).
const OP_I32_EQZ = 0x45;
const OP_I32_GE_S = 0x4e;
const OP_I32_LT_U = 0x49;
const OP_I32_SHR_U = 0x76;
const OP_I32_SHL = 0x74;
const OP_TRY = 0x06;
const OP_CATCH = 0x07;
const OP_RETHROW = 0x09;

export class FunctionRewriter {
  private readonly ctx: RewriteContext;
  private readonly reader: CodeReader;
  private readonly out: Writer;

  /** Reads ahead through a loop's body (countedLoop) while the first pass is at its start. */
  private readonly look: CodeReader;

  constructor(ctx: RewriteContext, out: Writer) {
    this.ctx = ctx;
    this.reader = new CodeReader(ctx.bytes);
    this.look = new CodeReader(ctx.bytes);
    this.out = out;
  }

  /** What the first pass finds in an instrumented function (for converting stacks), without writing anything. */
  planOf(i: number): { sites: SiteInfo[]; localTypes: readonly number[]; params: number } {
    return this.plan(i);
  }

  /** Write the body of defined function i (its size prefix included). */
  write(i: number): void {
    const { ctx, out } = this;
    const body = ctx.info.code[i];
    const size = out.beginSize();
    if (!ctx.graph.instrumented[i]) {
      const scan = ctx.graph.scans[i];
      if (body.funcRefs === 0 && scan.dataDrops.length === 0 && scan.elemDrops.length === 0) out.bytes(ctx.bytes, body.range.start, body.range.end);
      else this.copyRemapped(body.range.start, body.instructions, body.range.end);
    } else {
      this.emit(i, this.plan(i));
    }
    out.endSize(size);
  }

  /** Copy a body that needs only its function indices renumbered. */
  private copyRemapped(start: number, instructions: number, end: number): void {
    const { reader, out, ctx } = this;
    out.bytes(ctx.bytes, start, instructions);
    reader.reset(instructions, end);
    let copied = instructions;
    while (reader.pos < end) {
      const op = reader.next();
      if (op === Op.Call || op === Op.RefFunc) {
        out.bytes(ctx.bytes, copied, reader.immStart);
        out.u32(ctx.remap(reader.index));
        copied = reader.pos;
      } else if (op === Op.PrefixMisc && this.recordDrop(reader.sub, reader.index, copied)) {
        copied = reader.pos;
      }
    }
    out.bytes(ctx.bytes, copied, end);
  }

  // ---------------------------------------------------------------- pass 1

  private plan(i: number): Plan {
    const { ctx, reader } = this;
    const { info, graph, types } = ctx;
    const body = info.code[i];
    const fnType = types.types[info.functions[i]];
    const localTypes = [...fnType.params, ...declaredLocals(ctx.bytes, body.locals.start)];
    const plan: Plan = {
      sites: [{ kind: SITE_ENTRY, wag: 0, extra: -1, types: [], target: -1, calleeParams: 0, aliases: [] }],
      level0: newLevel(noTypes, body.instructions),
      thenLevels: [],
      elseLevels: [],
      regionCost: [0],
      loopRegion: [],
      fuelLocal: -1,
      localTypes,
      params: fnType.params.length,
      results: fnType.results,
      added: [],
      siteLocal: 0,
      rewindLocal: 0,
      spills: new Map(),
      temps: new Map(),
    };
    plan.siteLocal = addLocal(plan, I32);
    plan.rewindLocal = addLocal(plan, I32);

    const stack: number[] = [];
    const frames: Frame[] = [];
    let extras = 0;
    let wag = 1; // ordinal of the next Gate site (0 is the entry)
    let openers = 0;
    const imported = info.importedFunctions;

    const pushFrame = (kind: number, params: readonly number[], results: readonly number[], at: number, openerTypes: number[]): Frame => {
      const parent = frames[frames.length - 1];
      const dead = parent ? parent.dead || parent.unreachable : false;
      const f: Frame = {
        kind,
        params,
        results,
        height: stack.length,
        unreachable: false,
        dead,
        passed: false,
        level: dead ? null : newLevel(params, reader.pos),
        opener: kind === F_FUNC ? -1 : openers++,
        openerAt: at,
        openerTypes,
        entry: null,
        inElse: false,
        region: parent ? parent.region : 0,
        loopKey: -1,
      };
      if (kind === F_FUNC) f.level = plan.level0;
      else if (f.level) plan.thenLevels[f.opener] = f.level;
      frames.push(f);
      for (const p of params) stack.push(p);
      return f;
    };

    const pop = (): number => {
      const f = frames[frames.length - 1];
      if (stack.length > f.height) return stack.pop()!;
      if (f.unreachable) return UNKNOWN;
      throw new Error('operand stack underflow (module failed validation)');
    };
    const popN = (n: number): void => {
      for (let k = 0; k < n; k++) pop();
    };
    const setUnreachable = (): void => {
      const f = frames[frames.length - 1];
      stack.length = f.height;
      f.unreachable = true;
    };
    const live = (): boolean => {
      const f = frames[frames.length - 1];
      return !f.dead && !f.unreachable;
    };

    // A new site in the innermost frame: give it a key and register every
    // enclosing structure as an entry of its parent's level.
    const newSite = (site: SiteInfo): number => {
      const key = plan.sites.length;
      plan.sites.push(site);
      for (let d = frames.length - 1; d >= 0; d--) {
        const f = frames[d];
        const level = f.level!;
        if (level.keyLo < 0) level.keyLo = key;
        level.keyHi = key;
        if (d === 0) break;
        const parent = frames[d - 1];
        let e = f.entry;
        if (!e) {
          e = {
            kind: E_STRUCT,
            at: f.openerAt,
            types: f.openerTypes,
            base: parent.height,
            consumed: f.params.length + (f.kind === F_IF ? 1 : 0),
            keyLo: key,
            keyHi: key,
            isIf: f.kind === F_IF,
            thenHi: -1,
            elseLo: -1,
            key: -1,
            fallsThrough:
              f.kind !== F_IF &&
              parent.level!.entries.length === 0 &&
              f.openerAt === parent.level!.bodyAt &&
              f.openerTypes.length === f.params.length,
          };
          f.entry = e;
          parent.level!.entries.push(e);
          this.allocSpills(plan, e);
        }
        e.keyHi = key;
        if (f.kind === F_IF) {
          if (f.inElse) {
            if (e.elseLo < 0) e.elseLo = key;
          } else {
            e.thenHi = key;
          }
        }
      }
      return key;
    };

    const siteEntry = (kind: number, key: number, consumed: number): void => {
      const f = frames[frames.length - 1];
      const base = entryBase(frames, frames.length - 1);
      const e: Entry = {
        kind,
        at: reader.start,
        types: stack.slice(base),
        base,
        consumed,
        keyLo: key,
        keyHi: key,
        isIf: false,
        thenHi: -1,
        elseLo: -1,
        key,
        fallsThrough: false,
      };
      f.level!.entries.push(e);
      this.allocSpills(plan, e);
    };

    const cost = (n: number): void => {
      plan.regionCost[frames[frames.length - 1].region] += n;
    };

    // Locals set to a constant in the straight-line code just passed (a
    // counted loop's counter), and units charged per region for counted loops.
    const constants = new Map<number, number>();
    let constantEnd = -1;
    let constantValue = 0;
    const counted = new Map<number, number>();

    pushFrame(F_FUNC, noTypes, fnType.results, body.instructions, []);
    frames[0].height = 0;
    reader.reset(body.instructions, body.range.end);
    for (;;) {
      const op = reader.next();
      const f = frames[frames.length - 1];
      if (op === Op.End) {
        constants.clear();
        popN(f.results.length);
        stack.length = f.height;
        frames.pop();
        if (frames.length === 0) break;
        const l = f.level;
        if (f.kind === F_LOOP && l && l.entries.length === 1 && l.entries[0].kind === E_LOOP && l.entries[0].types.length === 0) {
          l.localFuel = true;
          if (plan.fuelLocal < 0) plan.fuelLocal = addLocal(plan, I32);
        }
        for (const r of f.results) stack.push(r);
        continue;
      }
      if (op === Op.Else) {
        constants.clear();
        popN(f.results.length);
        stack.length = f.height;
        for (const p of f.params) stack.push(p);
        f.unreachable = false;
        f.inElse = true;
        if (!f.dead) {
          f.level = newLevel(f.params, reader.pos);
          plan.elseLevels[f.opener] = f.level;
        }
        continue;
      }
      cost(1);
      wag += instructionSites(op, reader.sub);
      if (op === Op.I32Const) {
        constantEnd = reader.pos;
        constantValue = reader.value;
      } else if (op === Op.LocalSet || op === Op.LocalTee) {
        if (reader.start === constantEnd) constants.set(reader.index, constantValue);
        else constants.delete(reader.index);
      } else if (op !== Op.Block && op !== Op.Loop && isControl(op)) {
        constants.clear();
      }
      switch (op) {
        case Op.Block:
        case Op.Loop:
        case Op.If: {
          const bt = ctx.types.block(reader.index);
          const isLive = live();
          const at = reader.start;
          const openerTypes = isLive ? stack.slice(entryBase(frames, frames.length - 1)) : [];
          if (op === Op.If) pop();
          popN(bt.params.length);
          // A counted loop is charged all its iterations in the region around it, and has no check.
          const parentRegion = frames[frames.length - 1].region;
          const count =
            op === Op.Loop && isLive && !ctx.everything && bt.params.length === 0 && bt.results.length === 0
              ? countedLoop(this.look, reader.pos, body.range.end, (l) => constants.get(l))
              : null;
          const charge = count === null ? 0 : count.iterations * count.cost;
          const isCounted = count !== null && (counted.get(parentRegion) ?? 0) + charge <= COUNTED_LOOP_BUDGET;
          if (op === Op.Loop) constants.clear();
          const nf = pushFrame(op === Op.Block ? F_BLOCK : op === Op.Loop ? F_LOOP : F_IF, bt.params, bt.results, at, openerTypes);
          if (op === Op.Loop) {
            nf.region = plan.regionCost.length;
            plan.regionCost.push(0);
            if (isCounted) {
              counted.set(parentRegion, (counted.get(parentRegion) ?? 0) + charge);
              plan.regionCost[parentRegion] += charge;
            } else if (isLive) {
              plan.loopRegion[nf.opener] = nf.region;
              const key = newSite({ kind: SITE_LOOP, wag: -1, extra: -1, types: stack.slice(0), target: -1, calleeParams: 0, aliases: [] });
              nf.loopKey = key;
              const e: Entry = {
                kind: E_LOOP,
                at: -1,
                types: [...bt.params],
                base: nf.height,
                consumed: 0,
                keyLo: key,
                keyHi: key,
                isIf: false,
                thenHi: -1,
                elseLo: -1,
                key,
                fallsThrough: bt.params.length === 0,
              };
              nf.level!.entries.push(e);
              this.allocSpills(plan, e);
            }
          }
          break;
        }
        case Op.Br:
        case Op.BrIf: {
          const label = reader.index;
          const target = frames[frames.length - 1 - label];
          if (target.kind === F_LOOP && !f.passed) {
            this.backEdge(plan, target, wag);
            wag++;
            f.passed = true;
          }
          if (op === Op.BrIf) {
            pop();
            const types = target.kind === F_LOOP ? target.params : target.results;
            popN(types.length);
            for (const t of types) stack.push(t);
          } else {
            setUnreachable();
          }
          break;
        }
        case Op.BrTable: {
          const labels = brTableLabels(reader);
          if (!f.passed && labels.some((l) => frames[frames.length - 1 - l].kind === F_LOOP)) {
            // A Gate br_table check: not a point we resume at (docs/snapshot.md).
            wag++;
            f.passed = true;
          }
          setUnreachable();
          break;
        }
        case Op.Return:
        case Op.Unreachable:
          setUnreachable();
          break;
        case Op.Call: {
          const callee = reader.index;
          const sig = types.types[info.functionType(callee)];
          const resumable = live() && (ctx.everything || graph.suspends[callee] === 1);
          if (resumable) {
            const key = newSite({ kind: SITE_CALL, wag: wag - 1, extra: -1, types: stack.slice(0), target: callee, calleeParams: sig.params.length, aliases: [] });
            siteEntry(E_CALL, key, sig.params.length);
          } else if (callee >= imported) {
            cost(graph.cost[callee]);
          }
          popN(sig.params.length);
          for (const r of sig.results) stack.push(r);
          f.passed = true;
          break;
        }
        case Op.CallIndirect: {
          const t = reader.index;
          const sig = types.types[t];
          const resumable = live() && (ctx.everything || graph.indirectSuspends[graph.canonical[t]] === 1);
          if (resumable) {
            const key = newSite({
              kind: SITE_INDIRECT,
              wag: wag - 1,
              extra: -1,
              types: stack.slice(0, stack.length - 1),
              target: t,
              calleeParams: sig.params.length,
              aliases: [],
            });
            siteEntry(E_INDIRECT, key, sig.params.length + 1);
          } else {
            cost(graph.indirectCost[graph.canonical[t]]);
          }
          pop();
          popN(sig.params.length);
          for (const r of sig.results) stack.push(r);
          f.passed = true;
          break;
        }
        case Op.Drop:
          pop();
          break;
        case Op.Select: {
          pop();
          const b = pop();
          const a = pop();
          stack.push(a !== UNKNOWN ? a : b);
          break;
        }
        case Op.SelectT:
          popN(3);
          stack.push(reader.index2);
          break;
        case Op.LocalGet:
          stack.push(localTypes[reader.index]);
          break;
        case Op.LocalSet:
          pop();
          break;
        case Op.LocalTee:
          pop();
          stack.push(localTypes[reader.index]);
          break;
        case Op.GlobalGet:
          stack.push(ctx.globalTypes[reader.index]);
          break;
        case Op.GlobalSet:
          pop();
          break;
        case Op.TableGet:
          pop();
          stack.push(ctx.tableTypes[reader.index]);
          break;
        case Op.TableSet:
          popN(2);
          break;
        case Op.RefNull:
          stack.push(reader.index === -16 || reader.index === 0x70 ? FUNCREF : reader.index === -17 || reader.index === 0x6f ? EXTERNREF : refCode(reader.index));
          break;
        case Op.RefIsNull:
          pop();
          stack.push(I32);
          break;
        case Op.RefFunc:
          stack.push(FUNCREF);
          break;
        case Op.PrefixMisc: {
          const sub = reader.sub;
          if (isBulk(sub) && live()) {
            const key = newSite({ kind: SITE_BULK, wag: -1, extra: -1, types: stack.slice(0), target: sub, calleeParams: 0, aliases: [] });
            siteEntry(E_BULK, key, 0);
          }
          if (sub === MiscOp.TableGrow) {
            popN(2);
            stack.push(I32);
          } else if (sub === MiscOp.TableFill) {
            popN(3);
          } else {
            applyEffect(MISC[sub], pop, stack);
          }
          break;
        }
        case Op.PrefixSimd:
          applyEffect(SIMD[reader.sub], pop, stack);
          break;
        default:
          applyEffect(SINGLE[op], pop, stack);
      }
    }

    // Number the sites Gate does not have: loops without a back-edge check, bulk operations.
    for (const s of plan.sites) {
      if (s.kind !== SITE_ENTRY && s.wag < 0) s.extra = extras++;
    }
    // The handler reads these locals: allocate them before the locals are declared.
    for (const s of plan.sites) belowLocals(plan, s);
    return plan;
  }

  /** A Gate back-edge check of loop `target` at Gate ordinal `wag`. */
  private backEdge(plan: Plan, target: Frame, wag: number): void {
    if (target.loopKey < 0) return; // a dead loop: nothing resumes there
    const site = plan.sites[target.loopKey];
    if (site.wag < 0) site.wag = wag;
    else site.aliases.push(wag);
  }

  /** Allocate the locals an entry's normal path and dispatch use. */
  private allocSpills(plan: Plan, e: Entry): void {
    const n = e.types.length;
    const spillCount = e.kind === E_BULK || e.kind === E_LOOP ? n : n - e.consumed;
    for (let p = 0; p < spillCount; p++) spillLocal(plan, e.base + p, e.types[p]);
    if (e.kind !== E_BULK && e.kind !== E_LOOP && spillCount > 0) {
      for (let k = 0; k < e.consumed; k++) tempLocal(plan, e.types[n - e.consumed + k], k);
    }
  }

  // ---------------------------------------------------------------- pass 2

  private emit(i: number, plan: Plan): void {
    const { ctx, reader, out } = this;
    const body = ctx.info.code[i];
    const eng = ctx.engine;
    this.writeLocals(plan);
    const S = plan.siteLocal;
    const RW = plan.rewindLocal;

    // try (body) ... catch $unwind (save the frame) rethrow end
    out.u8(OP_TRY);
    ctx.types.writeBlockType(out, noTypes, plan.results);

    // Entry check: charge the entry region; when fuel runs out, tick (which
    // sets the fuel); an answer of 0 means the frame is being rewound.
    out.u8(Op.Block);
    out.u8(0x40);
    this.charge(Math.min(plan.regionCost[0], MAX_CHECK_COST));
    out.u8(Op.GlobalGet);
    out.u32(eng.fuel);
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(OP_I32_GE_S);
    out.u8(Op.BrIf);
    out.u8(0);
    out.u8(Op.Loop);
    out.u8(0x40);
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(Op.Call);
    out.u32(eng.tick);
    out.u8(Op.BrIf);
    out.u8(1);
    out.u8(Op.Call);
    out.u32(eng.begin);
    out.u8(Op.LocalTee);
    out.u32(S);
    out.u8(OP_I32_EQZ);
    out.u8(Op.BrIf);
    out.u8(0); // the entry site: tick again, which ends the rewind
    for (let l = plan.params; l < plan.localTypes.length; l++) {
      out.u8(Op.Call);
      out.u32(eng.load[plan.localTypes[l]]);
      out.u8(Op.LocalSet);
      out.u32(l);
    }
    out.u8(Op.I32Const);
    out.u8(1);
    out.u8(Op.LocalSet);
    out.u32(RW);
    out.u8(Op.End); // loop
    out.u8(Op.End); // block

    // Control frames of the output: per frame, its level, the next entry and the D blocks still open.
    const levels: (Level | null)[] = [];
    const cursor: number[] = [];
    const openD: number[] = [];
    const loopRegionOf: (number | undefined)[] = [];
    const wrapped = this.wrapped;
    wrapped.length = 0;
    this.deferred.length = 0;
    const startLevel = (level: Level | null, region: number | undefined, wrap = false): void => {
      levels.push(level);
      cursor.push(0);
      openD.push(0);
      loopRegionOf.push(region);
      wrapped.push(wrap ? 1 : 0);
      if (level && level.entries.length > 0) this.levelStart(plan, level, openD, region);
      if (level && level.entries.length > 0 && level.entries[0].kind === E_LOOP) {
        cursor[cursor.length - 1] = 1;
      }
    };
    startLevel(plan.level0, undefined);

    reader.reset(body.instructions, body.range.end);
    let copied = body.instructions;
    let openers = 0;
    for (;;) {
      const op = reader.next();
      const top = levels.length - 1;
      const level = levels[top];
      // An entry point at this instruction?
      if (level && cursor[top] < level.entries.length && level.entries[cursor[top]].at === reader.start) {
        out.bytes(ctx.bytes, copied, reader.start);
        copied = reader.start;
        const e = level.entries[cursor[top]++];
        if (!e.fallsThrough) {
          out.u8(Op.End); // D block of this entry
          openD[top]--;
        }
        this.normalPath(plan, e);
        if (e.kind === E_CALL) {
          out.u8(Op.Call);
          out.u32(ctx.remap(reader.index));
          copied = reader.pos;
          continue;
        }
        if (e.kind === E_INDIRECT) {
          this.indirectCall(plan, reader.index, reader.index2);
          copied = reader.pos;
          continue;
        }
        // Structures and bulk operations: the instruction itself is copied below.
      }
      switch (op) {
        case Op.End: {
          if (levels.length === 1) {
            out.bytes(ctx.bytes, copied, reader.start);
            this.handler(i, plan);
            out.u8(Op.End); // try
            out.u8(Op.End); // function
            copied = reader.pos;
            if (reader.pos !== body.range.end) throw new Error('operators after the end of the function body');
            return;
          }
          if (wrapped[top]) {
            // The loop's end, then its tick outside it (see loopCheck).
            out.bytes(ctx.bytes, copied, reader.pos);
            copied = reader.pos;
            const e = level!.entries[0];
            if (level!.localFuel) this.storeFuel(plan);
            out.u8(Op.Br);
            out.u8(2); // out of $retry and $exit, with the loop's results
            out.u8(Op.End); // $tick
            if (level!.localFuel) this.storeFuel(plan);
            this.tickAt(plan, e.key);
            // The header charges again on re-entry: give that back.
            out.u8(Op.GlobalGet);
            out.u32(ctx.engine.fuel);
            out.u8(Op.I32Const);
            out.s32(this.loopCost(plan, loopRegionOf[top]));
            out.u8(Op.I32Add);
            out.u8(Op.GlobalSet);
            out.u32(ctx.engine.fuel);
            out.u8(Op.Br);
            out.u8(0); // $retry
            out.u8(Op.End); // $retry
            out.u8(Op.End); // $exit
          }
          levels.pop();
          cursor.pop();
          openD.pop();
          loopRegionOf.pop();
          wrapped.pop();
          break;
        }
        case Op.Else: {
          out.bytes(ctx.bytes, copied, reader.pos);
          copied = reader.pos;
          const opener = this.openerOf[top];
          levels[top] = plan.elseLevels[opener] ?? null;
          cursor[top] = 0;
          openD[top] = 0;
          const l = levels[top];
          if (l && l.entries.length > 0) this.levelStart(plan, l, openD, undefined);
          break;
        }
        case Op.Block:
        case Op.Loop:
        case Op.If: {
          const opener = openers++;
          const level = plan.thenLevels[opener] ?? null;
          // A loop whose check needs nothing on the stack gets its tick outside (see loopCheck).
          const wrap = op === Op.Loop && level !== null && level.entries[0]?.kind === E_LOOP && level.entries[0].types.length === 0;
          if (wrap) {
            out.bytes(ctx.bytes, copied, reader.start);
            const bt = ctx.bytes.subarray(reader.start + 1, reader.pos);
            out.u8(Op.Block); // $exit
            out.bytes(bt);
            out.u8(Op.Loop); // $retry
            out.bytes(bt);
            if (level!.localFuel) {
              out.u8(Op.GlobalGet);
              out.u32(ctx.engine.fuel);
              out.u8(Op.LocalSet);
              out.u32(plan.fuelLocal);
            }
            out.u8(Op.Block); // $tick
            out.u8(0x40);
            copied = reader.start;
          }
          out.bytes(ctx.bytes, copied, reader.pos);
          copied = reader.pos;
          this.openerOf[levels.length] = opener;
          startLevel(level, op === Op.Loop ? plan.loopRegion[opener] : undefined, wrap);
          break;
        }
        case Op.Return:
          if (this.leavesLocalFuel(levels, levels.length - 1)) {
            out.bytes(ctx.bytes, copied, reader.start);
            copied = reader.start;
            this.storeFuel(plan);
          }
          break;
        case Op.Br:
        case Op.BrIf: {
          if (this.leavesLocalFuel(levels, reader.index)) {
            out.bytes(ctx.bytes, copied, reader.start);
            copied = reader.start;
            this.storeFuel(plan);
          }
          const label = this.relabel(reader.index, openD);
          if (label !== reader.index) {
            out.bytes(ctx.bytes, copied, reader.immStart);
            out.u32(label);
            copied = reader.pos;
          }
          break;
        }
        case Op.BrTable: {
          const labels = brTableLabels(reader);
          if (this.leavesLocalFuel(levels, Math.max(...labels))) {
            out.bytes(ctx.bytes, copied, reader.start);
            copied = reader.start;
            this.storeFuel(plan);
          }
          const mapped = labels.map((l) => this.relabel(l, openD));
          if (mapped.some((l, k) => l !== labels[k])) {
            out.bytes(ctx.bytes, copied, reader.immStart);
            out.u32(mapped.length - 1);
            // brTableLabels returns the default last.
            for (const l of mapped) out.u32(l);
            copied = reader.pos;
          }
          break;
        }
        case Op.Call:
        case Op.RefFunc:
          out.bytes(ctx.bytes, copied, reader.immStart);
          out.u32(ctx.remap(reader.index));
          copied = reader.pos;
          break;
        case Op.PrefixMisc:
          if (this.recordDrop(reader.sub, reader.index, copied)) copied = reader.pos;
          break;
      }
    }
  }

  /**
   * After data.drop or elem.drop of a passive segment: copy up to its end and
   * set the segment's flag (a snapshot writes a dropped segment empty).
   */
  private recordDrop(sub: number, segment: number, copied: number): boolean {
    const kind = sub === MiscOp.DataDrop ? 'data' : sub === MiscOp.ElemDrop ? 'elem' : undefined;
    if (kind === undefined) return false;
    const flag = this.ctx.droppedFlag(kind, segment);
    if (flag < 0) return false;
    const { out, reader } = this;
    out.bytes(this.ctx.bytes, copied, reader.pos);
    out.u8(Op.I32Const);
    out.u8(1);
    out.u8(Op.GlobalSet);
    out.u32(flag);
    return true;
  }

  /** The loop whose check is being written counts fuel in a local. */
  private localFuelNow = false;

  /** Whether each open output frame is a loop wrapped for its tick (by depth). */
  private readonly wrapped: number[] = [];

  /** Opener ordinal of each open output frame (by depth), for `else`. */
  private readonly openerOf: number[] = [];

  /** A branch's label after the D blocks it now leaves (and the try, for the function's label). */
  private relabel(label: number, openD: number[]): number {
    const top = openD.length - 1;
    let extra = 0;
    for (let k = 0; k <= label && k <= top; k++) {
      extra += openD[top - k];
      // Leaving a wrapped loop leaves its three wrappers too.
      if (k < label && this.wrapped[top - k]) extra += 3;
    }
    if (label === top) extra++; // the try around the body
    return label + extra;
  }

  /** Whether a branch to `label` leaves a loop that counts fuel in a local. */
  private leavesLocalFuel(levels: readonly (Level | null)[], label: number): boolean {
    const top = levels.length - 1;
    for (let k = 0; k < label && k <= top; k++) if (levels[top - k]?.localFuel) return true;
    return false;
  }

  /** Write the loop's local fuel count back to the global. */
  private storeFuel(plan: Plan): void {
    const { out, ctx } = this;
    out.u8(Op.LocalGet);
    out.u32(plan.fuelLocal);
    out.u8(Op.GlobalSet);
    out.u32(ctx.engine.fuel);
  }

  private loopCost(plan: Plan, region: number | undefined): number {
    return Math.max(1, Math.min(region === undefined ? 1 : plan.regionCost[region], MAX_CHECK_COST));
  }

  private writeLocals(plan: Plan): void {
    const { out } = this;
    // The declared locals, then the added ones, as runs of one type.
    const declared = plan.localTypes.slice(plan.params);
    const groups: [number, number][] = [];
    const addRun = (t: number): void => {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    };
    for (const t of declared) addRun(t);
    for (const t of plan.added) addRun(t);
    out.u32(groups.length);
    for (const [n, t] of groups) {
      out.u32(n);
      out.u8(t);
    }
  }

  /** fuel -= cost (leaves nothing on the stack). */
  private charge(cost: number): void {
    const { out, ctx } = this;
    out.u8(Op.GlobalGet);
    out.u32(ctx.engine.fuel);
    out.u8(Op.I32Const);
    out.s32(Math.max(1, cost));
    out.u8(Op.I32Sub);
    out.u8(Op.GlobalSet);
    out.u32(ctx.engine.fuel);
  }

  /** The cold path of a check at a site: call the tick with the site's key; it answers the new fuel. */
  private tickAt(plan: Plan, key: number): void {
    const { out, ctx } = this;
    out.u8(Op.I32Const);
    out.s32(key);
    out.u8(Op.LocalTee);
    out.u32(plan.siteLocal);
    out.u8(Op.Call);
    out.u32(ctx.engine.tick);
    out.u8(Op.Drop); // the tick has set the fuel
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(Op.LocalSet);
    out.u32(plan.rewindLocal);
  }

  /** The D blocks of a level and its rewind dispatch. */
  private levelStart(plan: Plan, level: Level, openD: number[], loopRegion: number | undefined): void {
    const { out, ctx } = this;
    const types = ctx.types;
    const entries = level.entries;
    const m = entries.length;
    const top = openD.length - 1;
    // An entry at the very start with nothing to push is reached by running on: no D block.
    const skip = entries[0].fallsThrough ? 1 : 0;
    // Levels whose dispatch was put off until this one (the blocks that open it, outermost first).
    const pending = this.deferred.splice(0);
    if (m > skip) {
      for (let j = m - 1; j >= skip; j--) {
        out.u8(Op.Block);
        types.writeBlockType(out, level.params, entries[j].types);
      }
    }
    openD[top] = Math.max(0, m - skip);
    const first = entries[0];
    if (first.kind === E_LOOP && skip === 1 && this.wrapped[top] === 1 && m > skip && pending.length === 0) {
      // A loop's dispatch goes where its check fails: a rewind finds the
      // fuel at -1, so the normal path tests only the fuel.
      this.localFuelNow = level.localFuel;
      const cost = loopRegion === undefined ? 1 : plan.regionCost[loopRegion];
      this.loopCheck(plan, first, cost, openD[top] + 1, () => this.dispatch(plan, [{ level, skip, nD: m - skip, dBase: 2 }]));
      return;
    }
    // A level that opens with a plain block (a `switch` lowered to nested
    // blocks is hundreds of them) leaves its dispatch to that block's level:
    // one test of the rewind flag on the normal path instead of one per block.
    const chained = skip === 1 && first.kind === E_STRUCT && first.types.length === 0 && ctx.bytes[first.at] === Op.Block;
    if (chained && (m > skip || pending.length > 0)) {
      this.deferred.push(...pending, { level, skip, nD: m - skip });
    } else if (m > skip || pending.length > 0) {
      const only = pending.length === 0 && skip === 0 && m === 1 ? entries[0] : undefined;
      if (only && only.kind === E_STRUCT && !only.isIf && only.types.length === 0 && level.params.length === 0) {
        // One way in, nothing to push: a conditional branch is all it takes.
        out.u8(Op.LocalGet);
        out.u32(plan.rewindLocal);
        out.u8(Op.BrIf);
        out.u32(0);
      } else {
        // This level first, then the ones that put theirs off, inside out.
        const parts: DispatchPart[] = [{ level, skip, nD: m - skip, dBase: 1 }];
        for (let k = pending.length - 1; k >= 0; k--) {
          const inner = parts[parts.length - 1];
          parts.push({ ...pending[k], dBase: inner.dBase + Math.max(0, inner.nD) + 1 });
        }
        this.dispatch(plan, parts);
      }
    }
    // A loop's first entry is its fuel check: it sits right here.
    if (entries[0].kind === E_LOOP) {
      if (!skip) {
        out.u8(Op.End);
        openD[top]--;
      }
      const wrappedLoop = this.wrapped[top] === 1;
      this.localFuelNow = level.localFuel;
      this.loopCheck(plan, entries[0], loopRegion === undefined ? 1 : plan.regionCost[loopRegion], wrappedLoop ? openD[top] + 1 : -1);
    }
  }

  /** Levels whose rewind dispatch waits for the block that opens them (see levelStart). */
  private readonly deferred: { level: Level; skip: number; nD: number }[] = [];

  /**
   * The rewind dispatch of a level, and of the levels that left theirs to it:
   * which entry the key being rewound goes through, and its values.
   */
  private dispatch(plan: Plan, parts: readonly DispatchPart[]): void {
    const { out, ctx } = this;
    const types = ctx.types;
    const level = parts[0].level;
    {
      out.u8(Op.LocalGet);
      out.u32(plan.rewindLocal);
      out.u8(Op.If);
      types.writeBlockType(out, level.params, level.params);
      for (let k = 0; k < level.params.length; k++) out.u8(Op.Drop);
      // Dispatch targets: one per entry, two for an `if` with sites in both
      // arms; the levels that opened this one contribute their entries after
      // their first (which is this block).
      const targets: { part: DispatchPart; entry: number; cond: number; lo: number; hi: number }[] = [];
      parts.forEach((part, k) => {
        part.level.entries.forEach((e, j) => {
          if (k > 0 && j === 0) return;
          if (e.isIf) {
            if (e.thenHi >= 0) targets.push({ part, entry: j, cond: 1, lo: e.keyLo, hi: e.thenHi });
            if (e.elseLo >= 0) targets.push({ part, entry: j, cond: 0, lo: e.elseLo, hi: e.keyHi });
          } else {
            targets.push({ part, entry: j, cond: -1, lo: e.keyLo, hi: e.keyHi });
          }
        });
      });
      const n = targets.length;
      const keyLo = level.keyLo;
      const range = parts[parts.length - 1].level.keyHi - keyLo + 1;
      // Label depth of target t's D block from inside the `if` (-1: run on from this level's start).
      const dOf = (t: number): number => {
        const { part, entry } = targets[t - 1];
        return part === parts[0] && skip0 && entry === 0 ? -1 : part.dBase + entry - part.skip;
      };
      const skip0 = parts[0].skip === 1;
      // A target with nothing to push (a nested block without values, or
      // running on from the level's start) is branched to straight from the
      // choice; the others go through a block of their own that pushes first.
      const direct = (t: number): boolean => {
        const { part, entry } = targets[t - 1];
        if (part === parts[0] && skip0 && entry === 0) return level.params.length === 0;
        const e = part.level.entries[entry];
        return e.kind === E_STRUCT && e.types.length === 0;
      };
      // Label depth of a direct target from inside `blocks` blocks in the `if`.
      const directDepth = (t: number, blocks: number): number => blocks + Math.max(0, dOf(t));
      const pushing: number[] = []; // targets with a block of their own, innermost first
      const blockOf = new Int32Array(n + 1);
      for (let t = 1; t <= n; t++) {
        if (!direct(t)) {
          pushing.push(t);
          blockOf[t] = pushing.length;
        }
      }
      const nd = pushing.length;
      // Where pushing target t goes once its block has ended (nd - u blocks still open).
      const branch = (t: number, u: number): void => {
        const { part, entry, cond } = targets[t - 1];
        if (dOf(t) < 0) {
          // Run on from the level's start (the `if` gives back dummy parameters).
          for (const p of level.params) dummy(out, p);
          out.u8(Op.Br);
          out.u32(nd - u);
          return;
        }
        this.dispatchPush(plan, part.level.entries[entry], cond);
        out.u8(Op.Br);
        out.u32(nd - u + dOf(t));
      };
      if (n === 1) {
        if (direct(1)) {
          out.u8(Op.Br);
          out.u32(directDepth(1, 0));
        } else {
          branch(1, 1); // inside the `if` itself
        }
      } else {
        if (range <= 4 * n) {
          // Few keys per way in: a table by key.
          for (let u = 0; u <= nd; u++) {
            out.u8(Op.Block);
            out.u8(0x40);
          }
          out.u8(Op.LocalGet);
          out.u32(plan.siteLocal);
          if (keyLo !== 0) {
            out.u8(Op.I32Const);
            out.s32(keyLo);
            out.u8(Op.I32Sub);
          }
          const keyTarget = new Int32Array(range);
          targets.forEach((tg, t) => {
            keyTarget.fill(direct(t + 1) ? directDepth(t + 1, nd + 1) : blockOf[t + 1], tg.lo - keyLo, tg.hi - keyLo + 1);
          });
          out.u8(Op.BrTable);
          out.u32(range);
          for (const t of keyTarget) out.u32(t);
          out.u32(0); // default: not a site of this level
          out.u8(Op.End);
          out.u8(Op.Unreachable);
        } else {
          // Many keys (deeply nested sites): compare with where each way in begins.
          for (let u = 0; u < nd; u++) {
            out.u8(Op.Block);
            out.u8(0x40);
          }
          const to = (t: number): number => (direct(t) ? directDepth(t, nd) : blockOf[t] - 1);
          for (let t = 1; t < n; t++) {
            out.u8(Op.LocalGet);
            out.u32(plan.siteLocal);
            out.u8(Op.I32Const);
            out.s32(targets[t].lo);
            out.u8(OP_I32_LT_U);
            out.u8(Op.BrIf);
            out.u32(to(t));
          }
          out.u8(Op.Br);
          out.u32(to(n));
        }
        pushing.forEach((t, k) => {
          out.u8(Op.End);
          branch(t, k + 1);
        });
      }
      out.u8(Op.End); // if
    }
  }

  /** Rewinding: push an entry's values (saved ones from the stack, dummies for block parameters). */
  private dispatchPush(plan: Plan, e: Entry, cond: number): void {
    const { out, ctx } = this;
    const eng = ctx.engine;
    const n = e.types.length;
    const spilled = e.kind === E_BULK || e.kind === E_LOOP ? n : n - e.consumed;
    for (let p = 0; p < n; p++) {
      const t = e.types[p];
      if (p < spilled) {
        out.u8(Op.Call);
        out.u32(eng.load[t]);
        out.u8(Op.LocalTee);
        out.u32(spillLocal(plan, e.base + p, t));
      } else if (e.kind === E_STRUCT) {
        if (e.isIf && p === n - 1) {
          out.u8(Op.I32Const);
          out.u8(cond);
        } else {
          dummy(out, t);
        }
      } else if (e.kind === E_INDIRECT && p === n - 1) {
        out.u8(Op.Call);
        out.u32(eng.callee);
      } else {
        out.u8(Op.Call);
        out.u32(eng.load[t]);
      }
    }
    // At a site the rewind of this frame is over (a call_indirect still has to choose its table).
    if (e.kind !== E_STRUCT && e.kind !== E_INDIRECT) {
      out.u8(Op.I32Const);
      out.u8(0);
      out.u8(Op.LocalSet);
      out.u32(plan.rewindLocal);
    }
  }

  /** The normal path at an entry (after its D block ends): copy what the handler needs into locals. */
  private normalPath(plan: Plan, e: Entry): void {
    const { out } = this;
    const n = e.types.length;
    if (e.kind === E_BULK) {
      this.spill(plan, e, n, 0);
      // Charge the length (top operand) and check (docs/engine.md, "Fuel").
      const len = spillLocal(plan, e.base + n - 1, I32);
      const memory = e.key >= 0 && isMemoryBulk(plan.sites[e.key].target);
      const eng = this.ctx.engine;
      out.u8(Op.GlobalGet);
      out.u32(eng.fuel);
      out.u8(Op.LocalGet);
      out.u32(len);
      if (memory) {
        out.u8(Op.I32Const);
        out.u8(BULK_BYTES_SHIFT);
        out.u8(OP_I32_SHR_U);
      } else {
        // min(n, 2^26) << 4: below 2^30 whatever n is.
        out.u8(Op.I32Const);
        out.s32(BULK_ELEMENTS_MAX);
        out.u8(Op.LocalGet);
        out.u32(len);
        out.u8(Op.I32Const);
        out.s32(BULK_ELEMENTS_MAX);
        out.u8(OP_I32_LT_U);
        out.u8(Op.Select);
        out.u8(Op.I32Const);
        out.u8(BULK_ELEMENT_SHIFT);
        out.u8(OP_I32_SHL);
      }
      out.u8(Op.I32Const);
      out.u8(1);
      out.u8(Op.I32Add);
      out.u8(Op.I32Sub);
      out.u8(Op.GlobalSet);
      out.u32(eng.fuel);
      out.u8(Op.GlobalGet);
      out.u32(eng.fuel);
      out.u8(Op.I32Const);
      out.u8(0);
      out.u8(Op.I32LtS);
      out.u8(Op.If);
      out.u8(0x40);
      this.tickAt(plan, e.key);
      out.u8(Op.End);
      return;
    }
    const below = n - e.consumed;
    if (below > 0) this.spill(plan, e, below, e.consumed);
    if (e.kind === E_CALL || e.kind === E_INDIRECT) {
      out.u8(Op.I32Const);
      out.s32(e.key);
      out.u8(Op.LocalSet);
      out.u32(plan.siteLocal);
    }
  }

  /** Copy the entry's first `count` values into their locals; the `consumed` top values stay where they are. */
  private spill(plan: Plan, e: Entry, count: number, consumed: number): void {
    const { out } = this;
    const n = e.types.length;
    for (let k = consumed - 1; k >= 0; k--) {
      out.u8(Op.LocalSet);
      out.u32(tempLocal(plan, e.types[n - consumed + k], k));
    }
    for (let p = count - 1; p >= 0; p--) {
      out.u8(Op.LocalSet);
      out.u32(spillLocal(plan, e.base + p, e.types[p]));
    }
    for (let p = 0; p < count; p++) {
      out.u8(Op.LocalGet);
      out.u32(spillLocal(plan, e.base + p, e.types[p]));
    }
    for (let k = 0; k < consumed; k++) {
      out.u8(Op.LocalGet);
      out.u32(tempLocal(plan, e.types[n - consumed + k], k));
    }
  }

  /** A loop's fuel check; its parameters go to locals on the cold path (the handler saves them from there). */
  private loopCheck(plan: Plan, e: Entry, cost: number, tickDepth: number, slow?: () => void): void {
    const { out, ctx } = this;
    const eng = ctx.engine;
    // Out to the tick, through `slow` first when given (the loop's rewind dispatch).
    const toTick = (): void => {
      if (!slow) {
        out.u8(Op.BrIf);
        out.u32(tickDepth);
        return;
      }
      out.u8(Op.If);
      out.u8(0x40);
      slow();
      out.u8(Op.Br);
      out.u32(tickDepth + 1);
      out.u8(Op.End);
    };
    if (tickDepth >= 0 && plan.fuelLocal >= 0 && this.localFuelNow) {
      out.u8(Op.LocalGet);
      out.u32(plan.fuelLocal);
      out.u8(Op.I32Const);
      out.s32(Math.max(1, Math.min(cost, MAX_CHECK_COST)));
      out.u8(Op.I32Sub);
      out.u8(Op.LocalTee);
      out.u32(plan.fuelLocal);
      out.u8(Op.I32Const);
      out.u8(0);
      out.u8(Op.I32LtS);
      toTick();
      return;
    }
    this.charge(Math.min(cost, MAX_CHECK_COST));
    if (tickDepth >= 0) {
      // The tick sits outside the loop (after its end): a loop without other
      // calls then has no call inside it, which keeps its values in registers.
      out.u8(Op.GlobalGet);
      out.u32(eng.fuel);
      out.u8(Op.I32Const);
      out.u8(0);
      out.u8(Op.I32LtS);
      toTick();
      return;
    }
    out.u8(Op.GlobalGet);
    out.u32(eng.fuel);
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(Op.I32LtS);
    out.u8(Op.If);
    ctx.types.writeBlockType(out, e.types, e.types);
    for (let p = e.types.length - 1; p >= 0; p--) {
      out.u8(Op.LocalSet);
      out.u32(spillLocal(plan, e.base + p, e.types[p]));
    }
    this.tickAt(plan, e.key);
    for (let p = 0; p < e.types.length; p++) {
      out.u8(Op.LocalGet);
      out.u32(spillLocal(plan, e.base + p, e.types[p]));
    }
    out.u8(Op.End);
  }

  /** A resumable call_indirect: through the rewind table when this frame is being rewound into it. */
  private indirectCall(plan: Plan, type: number, table: number): void {
    const { out, ctx } = this;
    const sig = ctx.types.types[type];
    out.u8(Op.LocalGet);
    out.u32(plan.rewindLocal);
    out.u8(Op.If);
    ctx.types.writeBlockType(out, [...sig.params, I32], sig.results);
    out.u8(Op.I32Const);
    out.u8(0);
    out.u8(Op.LocalSet);
    out.u32(plan.rewindLocal);
    out.u8(Op.CallIndirect);
    out.u32(type);
    out.u32(ctx.engine.rewindTable);
    out.u8(Op.Else);
    out.u8(Op.CallIndirect);
    out.u32(type);
    out.u32(table);
    out.u8(Op.End);
  }

  /** The catch handler: append this frame to the saved stack and rethrow. */
  private handler(i: number, plan: Plan): void {
    const { out, ctx } = this;
    const eng = ctx.engine;
    const S = plan.siteLocal;
    out.u8(OP_CATCH);
    out.u32(eng.tag);
    out.u8(Op.LocalGet);
    out.u32(S);
    out.u8(Op.I32Const);
    out.s32(ctx.info.importedFunctions + i);
    out.u8(Op.Call);
    out.u32(eng.frame);
    out.u8(Op.Block);
    out.u8(0x40);
    out.u8(Op.LocalGet);
    out.u32(S);
    out.u8(OP_I32_EQZ);
    out.u8(Op.BrIf);
    out.u8(0);
    // Operand values below the callee's parameters, top first, by site.
    const shapes = new Map<string, number[]>();
    const shapeOf: number[] = [0];
    for (let k = 1; k < plan.sites.length; k++) {
      const locals = belowLocals(plan, plan.sites[k]);
      if (locals.length === 0) {
        shapeOf.push(-1);
        continue;
      }
      const key = locals.join(',');
      if (!shapes.has(key)) shapes.set(key, locals);
      shapeOf.push([...shapes.keys()].indexOf(key));
    }
    if (shapes.size > 0) {
      const list = [...shapes.values()];
      const n = list.length;
      out.u8(Op.Block);
      out.u8(0x40);
      for (let t = 0; t < n; t++) {
        out.u8(Op.Block);
        out.u8(0x40);
      }
      out.u8(Op.LocalGet);
      out.u32(S);
      out.u8(Op.I32Const);
      out.u8(1);
      out.u8(Op.I32Sub);
      out.u8(Op.BrTable);
      out.u32(plan.sites.length - 1);
      for (let k = 1; k < plan.sites.length; k++) out.u32(shapeOf[k] < 0 ? n : shapeOf[k]);
      out.u32(n);
      for (let t = 0; t < n; t++) {
        out.u8(Op.End);
        for (const l of list[t]) this.saveLocal(plan, l);
        out.u8(Op.Br);
        out.u32(n - t - 1);
      }
      out.u8(Op.End);
    }
    for (let l = plan.localTypes.length - 1; l >= plan.params; l--) this.saveLocal(plan, l);
    out.u8(Op.End);
    out.u8(Op.Call);
    out.u32(eng.mark);
    for (let l = plan.params - 1; l >= 0; l--) this.saveLocal(plan, l);
    out.u8(OP_RETHROW);
    out.u8(0);
  }

  private saveLocal(plan: Plan, l: number): void {
    const { out, ctx } = this;
    out.u8(Op.LocalGet);
    out.u32(l);
    out.u8(Op.Call);
    out.u32(ctx.engine.save[localType(plan, l)]);
  }
}

function localType(plan: Plan, l: number): number {
  return l < plan.localTypes.length ? plan.localTypes[l] : plan.added[l - plan.localTypes.length];
}

/** Locals holding a site's operand values below what the callee saves itself, top first. */
function belowLocals(plan: Plan, s: SiteInfo): number[] {
  const n = s.types.length - s.calleeParams;
  const out: number[] = [];
  for (let p = n - 1; p >= 0; p--) out.push(spillLocal(plan, p, s.types[p]));
  return out;
}

function declaredLocals(bytes: Uint8Array, start: number): number[] {
  const out: number[] = [];
  let p = start;
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
  };
  const groups = u32();
  for (let g = 0; g < groups; g++) {
    const n = u32();
    const t = bytes[p++];
    for (let k = 0; k < n; k++) out.push(t);
  }
  return out;
}

function newLevel(params: readonly number[], bodyAt: number): Level {
  return { params, bodyAt, localFuel: false, entries: [], keyLo: -1, keyHi: -1 };
}

/** Stack position where the level of frame d starts (its parameters included). */
function entryBase(frames: Frame[], d: number): number {
  const f = frames[d];
  return f.height;
}

function addLocal(plan: Plan, type: number): number {
  plan.added.push(type);
  return plan.localTypes.length + plan.added.length - 1;
}

function spillLocal(plan: Plan, position: number, type: number): number {
  const key = position * 256 + type;
  let l = plan.spills.get(key);
  if (l === undefined) {
    l = addLocal(plan, type);
    plan.spills.set(key, l);
  }
  return l;
}

function tempLocal(plan: Plan, type: number, k: number): number {
  const key = k * 256 + type;
  let l = plan.temps.get(key);
  if (l === undefined) {
    l = addLocal(plan, type);
    plan.temps.set(key, l);
  }
  return l;
}

function applyEffect(e: Effect | undefined, pop: () => number, stack: number[]): void {
  if (!e) throw new Error('instruction without a known operand effect');
  for (let k = e.pops.length - 1; k >= 0; k--) pop();
  for (const t of e.pushes) stack.push(t);
}

function refCode(heapType: number): number {
  return heapType === 0x70 ? FUNCREF : EXTERNREF;
}

function isMemoryBulk(sub: number): boolean {
  return sub === MiscOp.MemoryInit || sub === MiscOp.MemoryCopy || sub === MiscOp.MemoryFill;
}

/** Push a zero of a type (a dummy block parameter). */
function dummy(out: Writer, t: number): void {
  switch (t) {
    case I32:
      out.u8(Op.I32Const);
      out.u8(0);
      return;
    case I64:
      out.u8(Op.I64Const);
      out.u8(0);
      return;
    case F32:
      out.u8(Op.F32Const);
      for (let k = 0; k < 4; k++) out.u8(0);
      return;
    case F64:
      out.u8(Op.F64Const);
      for (let k = 0; k < 8; k++) out.u8(0);
      return;
    case V128:
      out.u8(Op.PrefixSimd);
      out.u8(0x0c);
      for (let k = 0; k < 16; k++) out.u8(0);
      return;
    default:
      out.u8(Op.RefNull);
      out.u8(t);
  }
}

/** br_table's labels, the default last. */
function brTableLabels(reader: CodeReader): number[] {
  const bytes = reader.bytes;
  let p = reader.immStart;
  const read = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
  };
  const n = read();
  const out: number[] = [];
  for (let i = 0; i <= n; i++) out.push(read());
  return out;
}

/** Instructions after which a position can be reached other than by falling through to it, or not at all. */
function isControl(op: number): boolean {
  return op <= Op.ReturnCallIndirect && op !== Op.Nop && op !== Op.Call && op !== Op.CallIndirect;
}
