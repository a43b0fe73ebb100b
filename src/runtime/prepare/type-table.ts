// The module's function types as value-type codes, with room for the types
// the rewrite adds (the engine's imports and multi-value block types), each
// added once.

import type { Writer } from '../wasm/binary.ts';
import type { ModuleInfo } from '../wasm/module.ts';
import { typeCode } from './operand-types.ts';

export interface CodeType {
  params: readonly number[];
  results: readonly number[];
}

export class TypeTable {
  readonly types: CodeType[];
  /** Number of types the module declared. */
  readonly declared: number;
  private readonly index = new Map<string, number>();

  constructor(info: ModuleInfo) {
    this.types = info.types.map((t) => ({ params: t.params.map(typeCode), results: t.results.map(typeCode) }));
    this.declared = this.types.length;
  }

  /** Index of a function type, added when the module has none like it. */
  intern(params: readonly number[], results: readonly number[]): number {
    const key = `${params.join(',')}>${results.join(',')}`;
    let i = this.index.get(key);
    if (i === undefined) {
      // Reuse a declared type when there is one (first match).
      i = this.types.findIndex((t) => same(t.params, params) && same(t.results, results));
      if (i < 0) {
        i = this.types.length;
        this.types.push({ params: [...params], results: [...results] });
      }
      this.index.set(key, i);
    }
    return i;
  }

  /** Write a block type: the empty type, one value type, or a type index. */
  writeBlockType(out: Writer, params: readonly number[], results: readonly number[]): void {
    if (params.length === 0 && results.length === 0) out.u8(0x40);
    else if (params.length === 0 && results.length === 1) out.u8(results[0]);
    else out.s32(this.intern(params, results));
  }

  /** The added types, encoded as type-section entries. */
  writeAdded(out: Writer): void {
    for (let i = this.declared; i < this.types.length; i++) {
      const t = this.types[i];
      out.u8(0x60);
      out.u32(t.params.length);
      for (const p of t.params) out.u8(p);
      out.u32(t.results.length);
      for (const r of t.results) out.u8(r);
    }
  }

  /** Parameters and results of a block type as read by CodeReader (negative: empty or one value type). */
  block(index: number): CodeType {
    if (index === -64) return EMPTY;
    if (index < 0) return { params: [], results: [index + 0x80] };
    return this.types[index];
  }
}

const EMPTY: CodeType = { params: [], results: [] };

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
