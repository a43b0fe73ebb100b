// Functions that may hold a reference value (funcref, externref) when they
// call another function or the fuel tick. Asyncify can save only numbers, so
// it cannot unwind through them: the fuel rewrite wraps each one in a
// function that counts how many are on the stack, Asyncify leaves them out,
// and the engine unwinds only while that count is zero (in between, a tick
// refills fuel, or ends the run for a limit, but cannot suspend).
//
// The test over-approximates: any use of reference types in a function that
// has a loop, a call or a bulk operation (charged before it with a tick).
// Functions with none of them never tick and call nothing, so Asyncify has
// nothing to save in them.

import { Reader } from '../wasm/binary.ts';
import { CodeReader, MiscOp, Op } from '../wasm/instructions.ts';
import type { FuncType, ModuleInfo } from '../wasm/module.ts';

const REF_CODES = new Set([0x70, 0x6f]);

function isRef(t: string | number): boolean {
  return t === 'funcref' || t === 'externref' || (typeof t === 'number' && REF_CODES.has(t));
}

function typeHasRef(type: FuncType | undefined): boolean {
  return type !== undefined && (type.params.some(isRef) || type.results.some(isRef));
}

function localsHaveRef(bytes: Uint8Array, start: number, end: number): boolean {
  const r = new Reader(bytes, start, end, 'locals');
  const groups = r.u32();
  for (let i = 0; i < groups; i++) {
    r.u32();
    if (REF_CODES.has(r.u8())) return true;
  }
  return false;
}

/** The type of global `index` (imported globals first). */
function globalIsRef(info: ModuleInfo, index: number): boolean {
  if (index < info.importedGlobals) {
    const imported = info.imports.filter((i) => i.kind === 'global')[index];
    return imported?.kind === 'global' && isRef(imported.global.type);
  }
  const g = info.globals[index - info.importedGlobals];
  return g !== undefined && isRef(g.type);
}

function bodyUsesRefs(bytes: Uint8Array, info: ModuleInfo, start: number, end: number): boolean {
  const r = new CodeReader(bytes);
  r.reset(start, end);
  while (!r.atEnd()) {
    const op = r.next();
    switch (op) {
      case Op.RefNull:
      case Op.RefIsNull:
      case Op.RefFunc:
      case Op.TableGet:
      case Op.TableSet:
        return true;
      case Op.SelectT:
        if (isRef(r.index2)) return true;
        break;
      case Op.Call:
      case Op.ReturnCall:
        if (typeHasRef(info.types[info.functionType(r.index)])) return true;
        break;
      case Op.CallIndirect:
      case Op.ReturnCallIndirect:
        if (typeHasRef(info.types[r.index])) return true;
        break;
      case Op.GlobalGet:
      case Op.GlobalSet:
        if (globalIsRef(info, r.index)) return true;
        break;
      case Op.PrefixMisc:
        if (r.sub === MiscOp.TableGrow || r.sub === MiscOp.TableFill) return true;
        break;
    }
  }
  return false;
}

/** Positions in the code section of the functions to keep out of Asyncify (see above). */
export function referenceHolders(bytes: Uint8Array, info: ModuleInfo): number[] {
  const out: number[] = [];
  info.code.forEach((body, i) => {
    if (body.loops === 0 && body.calls === 0 && body.bulk === 0) return;
    const type = info.types[info.functionType(info.importedFunctions + i)];
    if (typeHasRef(type) || localsHaveRef(bytes, body.locals.start, body.locals.end) || bodyUsesRefs(bytes, info, body.instructions, body.range.end)) {
      out.push(i);
    }
  });
  return out;
}
