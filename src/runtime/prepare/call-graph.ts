// Which functions the rewrite must make suspendable, and what the others cost.
//
// A function needs unwind and rewind code (it is "instrumented") when a
// suspension can happen while it is on the stack: it has a loop (whose fuel
// check may suspend), a bulk memory or table operation (charged by length,
// checked at once), it calls a blocking import, it is part of a recursion
// (its entry check bounds the work between checks), or it calls, directly
// or through a table, a function that is instrumented. The others run
// boundedly and never suspend: they are copied as they are, and whoever
// calls them pays their largest possible cost in fuel.

import { CodeReader, Op, MiscOp } from '../wasm/instructions.ts';
import type { ModuleInfo } from '../wasm/module.ts';
import { ENTRY_ROUTINE_SITES, instructionSites } from './call-sites.ts';

/** A function whose worst-case cost exceeds this gets checks of its own. */
export const BOUNDED_COST_LIMIT = 20_000;

export interface FunctionScan {
  /** Direct callees (function indices), one per call instruction. */
  callees: number[];
  /** Type indices of call_indirect instructions. */
  indirectTypes: number[];
  /** Functions named by ref.func. */
  refFuncs: number[];
  loops: number;
  bulk: number;
  /** Segments named by data.drop and elem.drop (a snapshot must know which were dropped). */
  dataDrops: number[];
  elemDrops: number[];
  /** Instructions that change a table (table.set, grow, fill, copy, init): a snapshot must read the tables. */
  tableWrites: number;
  /** Instructions, not counting end and else. */
  instructions: number;
  /** Gate call sites, the entry included. */
  sites: number;
}

/** Scan one function body: what it calls and how many call sites Gate gives it. */
export function scanFunction(reader: CodeReader, types: ModuleInfo['types'], start: number, end: number): FunctionScan {
  const scan: FunctionScan = { callees: [], indirectTypes: [], refFuncs: [], loops: 0, bulk: 0, dataDrops: [], elemDrops: [], tableWrites: 0, instructions: 0, sites: 1 };
  // Control frames: 1 for a loop label, 0 otherwise; and each frame's flag
  // "a suspension point was passed in this block" (Gate places a back-edge
  // check only where the current block has none yet).
  const isLoop: number[] = [0];
  const passed: number[] = [0];
  reader.reset(start, end);
  for (;;) {
    const op = reader.next();
    const top = isLoop.length - 1;
    switch (op) {
      case Op.End:
        if (top === 0) return scan;
        isLoop.pop();
        passed.pop();
        continue;
      case Op.Else:
        continue;
      case Op.Block:
      case Op.If:
        isLoop.push(0);
        passed.push(0);
        break;
      case Op.Loop:
        isLoop.push(1);
        passed.push(0);
        scan.loops++;
        break;
      case Op.Br:
      case Op.BrIf: {
        const label = reader.index;
        if (label < top && isLoop[top - label] && !passed[top]) {
          scan.sites++;
          passed[top] = 1;
        }
        break;
      }
      case Op.BrTable: {
        if (!passed[top] && brTableHasLoop(reader, isLoop, top)) {
          scan.sites++;
          passed[top] = 1;
        }
        break;
      }
      case Op.Call:
        scan.callees.push(reader.index);
        passed[top] = 1;
        break;
      case Op.CallIndirect:
        scan.indirectTypes.push(reader.index);
        if (reader.index >= types.length) throw new Error(`type index ${reader.index} out of range`);
        passed[top] = 1;
        break;
      case Op.RefFunc:
        scan.refFuncs.push(reader.index);
        break;
      case Op.TableSet:
        scan.tableWrites++;
        break;
      case Op.PrefixMisc:
        if (reader.sub === MiscOp.TableInit || reader.sub === MiscOp.TableCopy || reader.sub === MiscOp.TableFill || reader.sub === MiscOp.TableGrow) {
          scan.tableWrites++;
        }
        if (isBulk(reader.sub)) scan.bulk++;
        else if (reader.sub === MiscOp.DataDrop) scan.dataDrops.push(reader.index);
        else if (reader.sub === MiscOp.ElemDrop) scan.elemDrops.push(reader.index);
        break;
    }
    scan.instructions++;
    scan.sites += instructionSites(op, reader.sub);
  }
}

/** Bulk memory and table operations (and table.grow), charged fuel by their length: the top operand. */
export function isBulk(sub: number): boolean {
  return (
    sub === MiscOp.MemoryInit ||
    sub === MiscOp.MemoryCopy ||
    sub === MiscOp.MemoryFill ||
    sub === MiscOp.TableInit ||
    sub === MiscOp.TableCopy ||
    sub === MiscOp.TableFill ||
    sub === MiscOp.TableGrow
  );
}

/** Whether any target of the br_table just read (default included) is a loop label. */
function brTableHasLoop(reader: CodeReader, isLoop: number[], top: number): boolean {
  // The reader skipped the labels; read them again from the immediate.
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
  for (let i = 0; i <= n; i++) {
    const label = read();
    if (label < top && isLoop[top - label]) return true;
  }
  return false;
}

/** First Gate call-site index of every function (imports first) and the total at the end. */
export function siteBases(bytes: Uint8Array, info: ModuleInfo, librarySites: (importIndex: number) => number): Int32Array {
  const reader = new CodeReader(bytes);
  const imported = info.importedFunctions;
  const total = imported + info.code.length;
  const bases = new Int32Array(total + 1);
  let next = ENTRY_ROUTINE_SITES;
  for (let f = 0; f < total; f++) {
    bases[f] = next;
    next += f < imported ? librarySites(f) : scanFunction(reader, info.types, info.code[f - imported].instructions, info.code[f - imported].range.end).sites;
  }
  bases[total] = next;
  return bases;
}

export interface CallGraphOptions {
  /** Imported functions (by index) that may block or stop the program. */
  blockingImports: ReadonlySet<number>;
  /** Instrument every defined function and make every call resumable (to resume a foreign stack anywhere). */
  everything?: boolean;
}

export interface CallGraph {
  scans: FunctionScan[];
  /** Per function index (imports first): 1 if a suspension can happen below a call to it. */
  suspends: Uint8Array;
  /** Per defined function: 1 if instrumented. */
  instrumented: Uint8Array;
  /** Per type index: 1 if a call_indirect of that type may reach a function that suspends. */
  indirectSuspends: Uint8Array;
  /** Worst-case fuel cost of each function that is not instrumented (by function index); 0 for others. */
  cost: Float64Array;
  /** Worst-case cost of a call_indirect of each type to a function that is not instrumented. */
  indirectCost: Float64Array;
  /** Type index of the first structurally equal type, for every type index. */
  canonical: number[];
  /** Functions that can be in a table, in ascending order (the rewind table). */
  referenceable: number[];
  /** First call-site index of each function (imports first; imports by their library bodies). */
  siteBase: Int32Array;
  /** Number of Gate call sites in the module. */
  siteCount: number;
}

export function buildCallGraph(
  bytes: Uint8Array,
  info: ModuleInfo,
  librarySites: (importIndex: number) => number,
  options: CallGraphOptions,
): CallGraph {
  const reader = new CodeReader(bytes);
  const imported = info.importedFunctions;
  const total = imported + info.code.length;
  const scans = info.code.map((body) => scanFunction(reader, info.types, body.instructions, body.range.end));

  const siteBase = new Int32Array(total + 1);
  let next = ENTRY_ROUTINE_SITES;
  for (let f = 0; f < total; f++) {
    siteBase[f] = next;
    next += f < imported ? librarySites(f) : scans[f - imported].sites;
  }
  siteBase[total] = next;

  const referenceable = referenceableFunctions(bytes, info, reader, scans);
  // call_indirect matches signatures structurally: work with one index per signature.
  const canonical = canonicalTypes(info);
  const typeOf = (f: number): number => canonical[info.functionType(f)];
  for (const s of scans) s.indirectTypes = s.indirectTypes.map((t) => canonical[t]);
  // Candidates of call_indirect per type: referenceable functions with that type.
  const candidates: number[][] = info.types.map(() => []);
  for (const f of referenceable) candidates[typeOf(f)].push(f);

  const suspends = new Uint8Array(total);
  for (const f of options.blockingImports) suspends[f] = 1;
  const instrumented = new Uint8Array(info.code.length);
  const indirectSuspends = new Uint8Array(info.types.length);
  for (let i = 0; i < info.code.length; i++) {
    const s = scans[i];
    if (options.everything || s.loops > 0 || s.bulk > 0) instrumented[i] = 1;
  }
  markRecursion(scans, imported, candidates, instrumented);

  const cost = new Float64Array(total);
  const indirectCost = new Float64Array(info.types.length);
  // Propagate "suspends" to callers until nothing changes; bound the cost of
  // the rest, instrumenting any function too costly to leave unchecked.
  for (;;) {
    propagate(scans, imported, candidates, instrumented, suspends, indirectSuspends);
    if (!boundCosts(scans, imported, candidates, instrumented, cost, indirectCost)) break;
  }
  return { scans, suspends, instrumented, indirectSuspends, cost, indirectCost, canonical, referenceable, siteBase, siteCount: next };
}

/**
 * Mark as instrumented every function that calls, directly or through a
 * table, something that suspends (a worklist over reverse call edges, so the
 * work is linear in the size of the call graph).
 */
function propagate(
  scans: FunctionScan[],
  imported: number,
  candidates: number[][],
  instrumented: Uint8Array,
  suspends: Uint8Array,
  indirectSuspends: Uint8Array,
): void {
  const total = imported + scans.length;
  // Reverse edges: callers of each function, and indirect callers of each type.
  const callers: number[][] = Array.from({ length: total }, () => []);
  const typeCallers: number[][] = candidates.map(() => []);
  const typesOf = new Map<number, number[]>(); // function -> types it is a candidate of
  candidates.forEach((fs, t) => {
    for (const f of fs) {
      let list = typesOf.get(f);
      if (!list) typesOf.set(f, (list = []));
      list.push(t);
    }
  });
  scans.forEach((s, i) => {
    for (const g of s.callees) callers[g].push(i);
    for (const t of s.indirectTypes) typeCallers[t].push(i);
  });
  const work: number[] = [];
  const mark = (f: number): void => {
    if (f >= imported) instrumented[f - imported] = 1;
    if (suspends[f]) return;
    suspends[f] = 1;
    work.push(f);
  };
  for (let f = 0; f < total; f++) {
    if (suspends[f]) work.push(f);
    else if (f >= imported && instrumented[f - imported]) mark(f);
  }
  while (work.length > 0) {
    const f = work.pop()!;
    for (const c of callers[f]) mark(imported + c);
    for (const t of typesOf.get(f) ?? []) {
      if (indirectSuspends[t]) continue;
      indirectSuspends[t] = 1;
      for (const c of typeCallers[t]) mark(imported + c);
    }
  }
}

/**
 * Worst-case cost of every function left uninstrumented, callees first (they
 * form no cycle; iterative, so that long call chains cannot exhaust the
 * JavaScript stack). Returns true when a function had to be instrumented
 * because its cost exceeds the limit (the caller then propagates again).
 */
function boundCosts(
  scans: FunctionScan[],
  imported: number,
  candidates: number[][],
  instrumented: Uint8Array,
  cost: Float64Array,
  indirectCost: Float64Array,
): boolean {
  cost.fill(0);
  const done = new Uint8Array(scans.length);
  let promoted = false;
  const plain = (g: number): boolean => g >= imported && !instrumented[g - imported];
  const typeCost = (t: number): number => {
    let max = 1;
    for (const g of candidates[t]) if (plain(g)) max = Math.max(max, cost[g]);
    return max;
  };
  // Post-order over plain callees (direct and indirect candidates).
  const deps = (i: number): number[] => {
    const out: number[] = [];
    for (const g of scans[i].callees) if (plain(g)) out.push(g - imported);
    for (const t of scans[i].indirectTypes) for (const g of candidates[t]) if (plain(g)) out.push(g - imported);
    return out;
  };
  for (let root = 0; root < scans.length; root++) {
    if (done[root] || instrumented[root]) continue;
    const work: { i: number; out: number[]; k: number }[] = [{ i: root, out: deps(root), k: 0 }];
    done[root] = 1;
    while (work.length > 0) {
      const top = work[work.length - 1];
      if (top.k < top.out.length) {
        const j = top.out[top.k++];
        if (!done[j]) {
          done[j] = 1;
          work.push({ i: j, out: deps(j), k: 0 });
        }
        continue;
      }
      work.pop();
      const s = scans[top.i];
      let c = s.instructions;
      for (const g of s.callees) if (plain(g)) c += cost[g];
      for (const t of s.indirectTypes) c += typeCost(t);
      if (c > BOUNDED_COST_LIMIT) {
        instrumented[top.i] = 1;
        promoted = true;
      } else {
        cost[imported + top.i] = c;
      }
    }
  }
  for (let t = 0; t < candidates.length; t++) indirectCost[t] = typeCost(t);
  return promoted;
}

/** Instrument every function that is part of a recursion (Tarjan's strongly connected components). */
function markRecursion(scans: FunctionScan[], imported: number, candidates: number[][], instrumented: Uint8Array): void {
  const n = scans.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0;
  const edges = (i: number): number[] => {
    const out: number[] = [];
    for (const g of scans[i].callees) if (g >= imported) out.push(g - imported);
    for (const t of scans[i].indirectTypes) for (const g of candidates[t]) if (g >= imported) out.push(g - imported);
    return out;
  };
  // Iterative, so that deep call chains do not exhaust the JavaScript stack.
  for (let root = 0; root < n; root++) {
    if (index[root] >= 0) continue;
    const work: { v: number; out: number[]; k: number }[] = [];
    const open = (v: number): void => {
      index[v] = low[v] = counter++;
      stack.push(v);
      onStack[v] = 1;
      work.push({ v, out: edges(v), k: 0 });
    };
    open(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      if (top.k < top.out.length) {
        const w = top.out[top.k++];
        if (index[w] < 0) open(w);
        else if (onStack[w]) low[top.v] = Math.min(low[top.v], index[w]);
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low[parent] = Math.min(low[parent], low[top.v]);
      }
      if (low[top.v] === index[top.v]) {
        const members: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          members.push(w);
        } while (w !== top.v);
        const selfLoop = members.length === 1 && top.out.includes(top.v);
        if (members.length > 1 || selfLoop) for (const m of members) instrumented[m] = 1;
      }
    }
  }
}

/** For each type index, the first index of a structurally equal function type. */
export function canonicalTypes(info: ModuleInfo): number[] {
  const first = new Map<string, number>();
  return info.types.map((t, i) => {
    const key = `${t.params.join(',')}>${t.results.join(',')}`;
    const seen = first.get(key);
    if (seen !== undefined) return seen;
    first.set(key, i);
    return i;
  });
}

/** Functions named in element segments or by ref.func anywhere (sorted, unique). */
function referenceableFunctions(bytes: Uint8Array, info: ModuleInfo, reader: CodeReader, scans: FunctionScan[]): number[] {
  const set = new Set<number>();
  for (const s of scans) for (const f of s.refFuncs) set.add(f);
  const readU32 = (p: number): [number, number] => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return [result >>> 0, p];
      shift += 7;
    }
  };
  for (const seg of info.elements) {
    if (seg.encoding === 'indices') {
      let p = seg.items.start;
      for (let i = 0; i < seg.count; i++) {
        const [f, q] = readU32(p);
        set.add(f);
        p = q;
      }
    } else {
      collectRefFuncs(reader, seg.items.start, seg.items.end, set);
    }
  }
  for (const g of info.globals) if (g.funcRefs > 0) collectRefFuncs(reader, g.init.start, g.init.end, set);
  return [...set].sort((a, b) => a - b);
}

function collectRefFuncs(reader: CodeReader, start: number, end: number, out: Set<number>): void {
  reader.reset(start, end);
  while (reader.pos < end) {
    const op = reader.next();
    if (op === Op.RefFunc) out.add(reader.index);
  }
}
