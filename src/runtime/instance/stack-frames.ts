// A suspended stack as it travels in a snapshot: Gate's portable stack
// (docs/snapshot.md, "The portable stack"). The stack module keeps frames
// named by the rewrite's own site keys (portable-stack.ts); here they become
// Gate's call-site indexes and stack offsets, and back, with every frame
// checked against the program: call sites in range, frame sizes, the callee
// of each outer frame, the entry routine's frame last.

import { programSites, type ProgramSites } from '../prepare/prepare.ts';
import { SITE_CALL, SITE_ENTRY, SITE_INDIRECT, type SiteInfo } from '../prepare/function-rewrite.ts';
import { SITE_ENTRY_RUNNING, SITE_NOTHING_RUN, SITE_START_RUNNING, ENTRY_ROUTINE_SITES } from '../prepare/call-sites.ts';
import { EXTERNREF, FUNCREF, V128, typeCode } from '../prepare/operand-types.ts';
import { BOTTOM_FUNCTION, frameOffsets, StackMismatch, type PortableSaved } from './portable-stack.ts';
import type { CompiledModule } from './instance.ts';
import { SnapshotError } from '../snapshot/format.ts';

const cache = new WeakMap<object, ProgramSites>();

/** The program's sites, worked out once per compiled module. */
export function sitesOf(compiled: CompiledModule): ProgramSites {
  let s = cache.get(compiled.prepared);
  if (!s) {
    s = programSites(compiled.program, compiled.prepared.info);
    cache.set(compiled.prepared, s);
  }
  return s;
}

/** Value type codes of a function's parameters in the order the entry routine's frame holds them (last first). */
function argumentTypes(s: ProgramSites, f: number): number[] {
  const params = s.types[s.functionTypes[f]].params;
  const out: number[] = [];
  for (let i = params.length - 1; i >= 0; i--) {
    const t = typeCode(params[i]);
    out.push(t);
    if (t === V128) out.push(V128);
  }
  return out;
}

function entryArgumentTypes(s: ProgramSites, entry: string | undefined): number[] | undefined {
  const f = entry === undefined ? undefined : s.exports.get(entry);
  return f === undefined ? undefined : argumentTypes(s, f);
}

/** Parameter types of an exported function. */
export function entryParamTypes(compiled: CompiledModule, name: string): string[] {
  const s = sitesOf(compiled);
  const f = s.exports.get(name);
  if (f === undefined) return [];
  return s.types[s.functionTypes[f]].params;
}

const NONE = 0xffffffffn;

function words(types: readonly number[]): number {
  let n = 0;
  for (const t of types) n += t === V128 ? 2 : 1;
  return n;
}

/** How an instance's function references map to function indexes and back. */
export interface FunctionReferences {
  indexOf(ref: unknown): number | undefined;
  ref(index: number): unknown;
}

/**
 * The value types of a frame's words in Gate's order: operand values top
 * first, then non-parameter locals last first (a v128 takes two words).
 */
function wordTypes(values: readonly number[], locals: readonly number[]): number[] {
  const out: number[] = [];
  const add = (t: number): void => {
    out.push(t);
    if (t === V128) out.push(V128);
  };
  for (let i = values.length - 1; i >= 0; i--) add(values[i]);
  for (let i = locals.length - 1; i >= 0; i--) add(locals[i]);
  return out;
}

/**
 * A reference in a frame travels as a function index + 1, 0 for null (our
 * extension: Gate has no references); an external reference only as null.
 */
function encodeReference(type: number, held: unknown, refs: FunctionReferences): bigint {
  if (held === null) return 0n;
  const f = type === FUNCREF ? refs.indexOf(held) : undefined;
  if (f === undefined) throw new SnapshotError('the suspended stack holds an external reference, which a snapshot cannot carry', 'ERR_SNAPSHOT_UNSUPPORTED');
  return BigInt(f) + 1n;
}

function decodeReference(type: number, word: bigint, refs: FunctionReferences): unknown {
  if (word === 0n) return null;
  const ref = type === FUNCREF && word <= 0xffffffffn ? refs.ref(Number(word) - 1) : undefined;
  if (ref === undefined || ref === null) throw new StackMismatch(`a stack reference (${word}) is not a function this program can refer to`);
  return ref;
}

/**
 * The Gate portable stack of a saved stack. `phase` and `entry` say what the
 * entry routine was running.
 */
export function portableForSnapshot(
  compiled: CompiledModule,
  saved: PortableSaved,
  phase: 'start' | 'entry',
  entry: string | undefined,
  refs: FunctionReferences,
): Uint8Array {
  const s = sitesOf(compiled);
  const src = new DataView(saved.bytes.buffer, saved.bytes.byteOffset, saved.bytes.byteLength);
  const frames = frameOffsets(saved.bytes);
  const out: bigint[] = [];
  const pushWords = (from: number, to: number, types?: readonly number[]): void => {
    for (let p = from, k = 0; p < to; p += 8, k++) {
      const word = src.getBigUint64(p, true);
      const t = types?.[k];
      if (t === FUNCREF) out.push(encodeReference(t, saved.funcs[Number(word & 0xffffffffn)], refs));
      else if (t === EXTERNREF) out.push(encodeReference(t, saved.externs[Number(word & 0xffffffffn)], refs));
      else out.push(word);
    }
  };
  for (const p of frames) {
    const key = src.getUint32(p, true);
    const size = src.getUint32(p + 4, true);
    const f = src.getUint32(p + 8, true);
    const data = size - 16;
    if (f === BOTTOM_FUNCTION) {
      if (phase === 'start') {
        out.push((8n << 32n) | BigInt(SITE_START_RUNNING));
        const e = entry === undefined ? undefined : s.exports.get(entry);
        out.push(e === undefined ? (NONE << 32n) | NONE : BigInt(e));
      } else {
        out.push((BigInt(data) << 32n) | BigInt(SITE_ENTRY_RUNNING));
        pushWords(p + 16, p + size, entryArgumentTypes(s, entry));
      }
      continue;
    }
    if (f < s.importedFunctions) {
      out.push((8n << 32n) | BigInt(s.siteBase[f]));
      continue;
    }
    const site = s.sites[f - s.importedFunctions]?.[key];
    if (!site) throw new StackMismatch(`frame of function ${f} at unknown site ${key}`);
    const index = site.wag >= 0 ? s.siteBase[f] + site.wag : s.extraBase[f - s.importedFunctions] + site.extra;
    out.push((BigInt(8 + data) << 32n) | BigInt(index));
    pushWords(p + 16, p + size, site.kind === SITE_ENTRY ? undefined : wordTypes(site.types, s.locals[f - s.importedFunctions]));
  }
  const bytes = new Uint8Array(out.length * 8);
  const view = new DataView(bytes.buffer);
  out.forEach((w, i) => view.setBigUint64(i * 8, w, true));
  return bytes;
}

interface Located {
  f: number;
  site: SiteInfo | undefined;
  /** Library body entry of an import. */
  library: boolean;
}

/** Which function and site a Gate call-site index names. */
function locate(s: ProgramSites, index: number): Located {
  const total = s.siteBase.length - 1;
  if (index >= s.siteBase[total]) {
    // One of our own sites (after all of Gate's).
    const defined = s.extraBase.length - 1;
    if (index >= s.extraBase[defined]) throw new StackMismatch(`call site index ${index} is unknown`);
    const i = upperBound(s.extraBase, index) - 1;
    const ordinal = index - s.extraBase[i];
    const site = s.sites[i]?.find((x) => x.extra === ordinal);
    return { f: s.importedFunctions + i, site, library: false };
  }
  if (index < ENTRY_ROUTINE_SITES) throw new StackMismatch(`entry routine site ${index} is not the last frame`);
  const f = upperBound(s.siteBase, index) - 1;
  const ordinal = index - s.siteBase[f];
  if (f < s.importedFunctions) {
    if (ordinal !== 0) throw new StackMismatch(`call site ${index} is inside an import's library code`);
    return { f, site: undefined, library: true };
  }
  const list = s.sites[f - s.importedFunctions];
  const site = list?.find((x) => x.wag === ordinal || x.aliases.includes(ordinal));
  return { f, site, library: false };
}

/** Index of the first element greater than v (sorted ascending). */
function upperBound(a: Int32Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What the entry routine's frame of a Gate stack says. */
export interface EntryRoutine {
  kind: 'nothing-run' | 'start-running' | 'entry-running';
  /** Function indexes (undefined for none). */
  start?: number;
  entry?: number;
}

/** Read only the entry routine's frame (the last) of a Gate portable stack. */
export function entryRoutineOf(gate: Uint8Array): EntryRoutine {
  const view = new DataView(gate.buffer, gate.byteOffset, gate.byteLength);
  if (gate.byteLength === 0 || gate.byteLength % 8 !== 0) throw new StackMismatch(`invalid stack size ${gate.byteLength}`);
  let p = 0;
  for (;;) {
    if (p + 8 > gate.byteLength) throw new StackMismatch('ran out of stack before the entry routine frame');
    const index = view.getUint32(p, true);
    const offset = view.getUint32(p + 4, true);
    if (index < ENTRY_ROUTINE_SITES) {
      const fn = (at: number): number | undefined => {
        if (at + 8 > gate.byteLength) throw new StackMismatch('ran out of stack in the entry routine frame');
        const v = view.getBigUint64(at, true);
        return v === 0xffffffffffffffffn || v === 0xffffffffn ? undefined : Number(v);
      };
      if (index === SITE_NOTHING_RUN) return { kind: 'nothing-run', start: fn(p + 8), entry: fn(p + 16) };
      if (index === SITE_START_RUNNING) return { kind: 'start-running', entry: fn(p + 8) };
      return { kind: 'entry-running' };
    }
    if (offset < 8 || offset % 8 !== 0) throw new StackMismatch(`invalid stack offset ${offset}`);
    p += offset;
  }
}

/**
 * The saved stack of a Gate portable stack, checked against the program:
 * every frame at a site this preparation can resume, of the right size, each
 * outer frame calling the function of the frame inside it, the innermost at a
 * point where a program can stop. Returns undefined for a stack of only the
 * entry routine's frame (nothing to rewind).
 */
export function portableFromSnapshot(compiled: CompiledModule, gate: Uint8Array, refs: FunctionReferences): PortableSaved | undefined {
  const s = sitesOf(compiled);
  const view = new DataView(gate.buffer, gate.byteOffset, gate.byteLength);
  if (gate.byteLength === 0 || gate.byteLength % 8 !== 0) throw new StackMismatch(`invalid stack size ${gate.byteLength}`);
  const out: { header: bigint; fn: number; from: number; to: number; types?: readonly number[] }[] = [];
  let p = 0;
  let inner: Located | undefined;
  for (;;) {
    if (p + 8 > gate.byteLength) throw new StackMismatch('ran out of stack before the entry routine frame');
    const index = view.getUint32(p, true);
    const offset = view.getUint32(p + 4, true);
    if (index < ENTRY_ROUTINE_SITES) {
      // The entry routine's frame: what we rewind is only the entry function's (or start's) call.
      if (index === SITE_NOTHING_RUN) {
        if (out.length > 0) throw new StackMismatch('functions above a not-yet-started entry routine');
        return undefined;
      }
      const size = index === SITE_START_RUNNING ? 16 : 8 + offset;
      if (index === SITE_START_RUNNING && offset !== 8) throw new StackMismatch(`entry routine site ${index} has inconsistent stack offset ${offset}`);
      if (p + size !== gate.byteLength) throw new StackMismatch(`${gate.byteLength - p - size} bytes of excess data at start of stack`);
      if (inner && (inner.library || (inner.site && inner.site.kind !== SITE_ENTRY))) {
        // The outermost function frame must be the function the routine called.
        const exported = index === SITE_START_RUNNING ? s.start : undefined;
        if (exported !== undefined && inner.f !== exported) throw new StackMismatch('the start frame is not the start function');
      }
      const params = index === SITE_ENTRY_RUNNING ? offset : 0;
      const bottom = { header: (BigInt(16 + params) << 32n) | 0n, fn: BOTTOM_FUNCTION, from: index === SITE_ENTRY_RUNNING ? p + 8 : p + 16, to: p + size };
      // Arguments of an entry function (embedder mode): the outermost frame's function.
      out.push(params > 0 && inner && !inner.library ? { ...bottom, types: argumentTypes(s, inner.f) } : bottom);
      break;
    }
    if (offset < 8 || offset % 8 !== 0 || p + offset > gate.byteLength) throw new StackMismatch(`invalid stack offset ${offset}`);
    const here = locate(s, index);
    if (here.library) {
      if (out.length > 0) throw new StackMismatch('an import frame that is not the innermost');
      if (offset !== 8) throw new StackMismatch(`encoded stack offset ${offset} of call site ${index} does not match offset 8`);
    } else {
      const site = here.site;
      if (!site) throw new StackMismatch(`call site ${index} is not a point where this preparation can resume`);
      if (out.length === 0 && (site.kind === SITE_CALL || site.kind === SITE_INDIRECT)) {
        throw new StackMismatch(`the innermost frame is at a call (site ${index})`);
      }
      if (out.length > 0 && site.kind !== SITE_CALL && site.kind !== SITE_INDIRECT) {
        throw new StackMismatch(`an outer frame is not at a call (site ${index})`);
      }
      if (out.length > 0) checkCall(s, site, inner!);
      const locals = s.locals[here.f - s.importedFunctions];
      const expected = site.kind === SITE_ENTRY ? 8 : 8 * (1 + words(site.types) + words(locals));
      if (offset !== expected) {
        throw new StackMismatch(`encoded stack offset ${offset} of call site ${index} does not match offset ${expected}`);
      }
      const key = s.sites[here.f - s.importedFunctions]!.indexOf(site);
      const types = site.kind === SITE_ENTRY ? undefined : wordTypes(site.types, locals);
      out.push({ header: (BigInt(offset + 8) << 32n) | BigInt(key), fn: here.f, from: p + 8, to: p + offset, types });
      p += offset;
      inner = here;
      continue;
    }
    out.push({ header: 16n << 32n, fn: here.f, from: p + 8, to: p + 8 });
    p += offset;
    inner = here;
  }
  if (out.length < 2) throw new StackMismatch('no function frame');
  // Internal layout: two header words per frame (the second names the function).
  let size = 0;
  for (const fr of out) size += 16 + (fr.to - fr.from);
  const bytes = new Uint8Array(size);
  const dst = new DataView(bytes.buffer);
  const funcs: unknown[] = [];
  const externs: unknown[] = [];
  let q = 0;
  for (const fr of out) {
    dst.setBigUint64(q, fr.header, true);
    dst.setUint32(q + 8, fr.fn, true);
    bytes.set(gate.subarray(fr.from, fr.to), q + 16);
    // References go to the stack module's tables; their words name the entries.
    fr.types?.forEach((t, k) => {
      if (t !== FUNCREF && t !== EXTERNREF) return;
      const at = q + 16 + 8 * k;
      const list = t === FUNCREF ? funcs : externs;
      list.push(decodeReference(t, view.getBigUint64(fr.from + 8 * k, true), refs));
      dst.setBigUint64(at, BigInt(list.length - 1), true);
    });
    q += 16 + (fr.to - fr.from);
  }
  return { bytes, funcs, externs };
}

/** An outer frame's call must be able to reach the frame inside it. */
function checkCall(s: ProgramSites, site: SiteInfo, inner: Located): void {
  if (site.kind === SITE_CALL) {
    if (site.target !== inner.f) throw new StackMismatch(`a frame of function ${inner.f} under a call of function ${site.target}`);
    return;
  }
  if (s.functionTypes[inner.f] !== s.canonicalTypes[site.target] || !s.referenceable.has(inner.f)) {
    throw new StackMismatch(`a frame of function ${inner.f} under an indirect call it cannot be the target of`);
  }
}
