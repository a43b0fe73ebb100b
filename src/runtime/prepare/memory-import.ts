// Turn the memories defined by a prepared module into imports, so that the
// engine supplies them: the program's memory with the instance's size limit as
// its maximum (and later from a pool or from a snapshot), and the Asyncify
// memory shared by all instances of a thread.

import { ENGINE_MODULE } from './names.ts';
import { Reader, Writer } from '../wasm/binary.ts';
import { parseModule, SectionId } from '../wasm/module.ts';

const KIND_MEMORY = 2;

export interface MemoryImport {
  field: string;
  minimum: number;
  maximum?: number;
}

/**
 * Replace the memory section by imports from the engine module, in the same
 * order, so memory indices do not change. `memories` describes each defined
 * memory in index order.
 */
export function importMemories(bytes: Uint8Array, memories: readonly MemoryImport[]): Uint8Array<ArrayBuffer> {
  const info = parseModule(bytes);
  if (info.memories.length !== memories.length) {
    throw new Error(`prepared module defines ${info.memories.length} memories, expected ${memories.length}`);
  }
  const out = new Writer(bytes.length + 64);
  out.bytes(bytes, 0, 8);
  let placed = false;
  const importSection = (): void => {
    const existing = info.sections.find((s) => s.id === SectionId.Import);
    out.u8(SectionId.Import);
    const size = out.beginSize();
    let count = 0;
    let entriesStart = 0;
    if (existing) {
      const r = new Reader(bytes, existing.payloadStart, existing.end, 'import section');
      count = r.u32();
      entriesStart = r.pos;
    }
    out.u32(count + memories.length);
    if (existing) out.bytes(bytes, entriesStart, existing.end);
    for (const m of memories) {
      out.name(ENGINE_MODULE);
      out.name(m.field);
      out.u8(KIND_MEMORY);
      out.u8(m.maximum === undefined ? 0 : 1);
      out.u32(m.minimum);
      if (m.maximum !== undefined) out.u32(m.maximum);
    }
    out.endSize(size);
    placed = true;
  };
  for (const s of info.sections) {
    // The import section goes where it was, or before the first section that must follow it.
    if (!placed && s.id !== SectionId.Custom && (s.id === SectionId.Import || s.id > SectionId.Import)) importSection();
    if (s.id === SectionId.Import || s.id === SectionId.Memory) continue;
    out.bytes(bytes, s.start, s.end);
  }
  if (!placed) importSection();
  return out.finish();
}
