// Turn the memories defined by a prepared module into imports, so that the
// engine supplies them: the program's memory with the instance's size limit as
// its maximum (and later from a pool or from a snapshot), and the Asyncify
// memory shared by all instances of a thread.

import { ENGINE_MODULE } from './names.ts';
import { ByteWriter, ByteReader } from './bytes.ts';

const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const KIND_MEMORY = 2;

export interface MemoryImport {
  field: string;
  minimum: number;
  maximum?: number;
}

interface Section {
  id: number;
  start: number; // of the payload
  end: number;
}

function sections(bytes: Uint8Array): Section[] {
  const r = new ByteReader(bytes, 8);
  const out: Section[] = [];
  while (!r.atEnd()) {
    const id = r.u8();
    const size = r.u32();
    const start = r.offset;
    r.skip(size);
    out.push({ id, start, end: start + size });
  }
  return out;
}

/**
 * Replace the memory section by imports from the engine module, in the same
 * order, so memory indices do not change. `memories` describes each defined
 * memory in index order.
 */
export function importMemories(bytes: Uint8Array, memories: readonly MemoryImport[]): Uint8Array {
  const list = sections(bytes);
  const memory = list.find((s) => s.id === SECTION_MEMORY);
  if (!memory) throw new Error('prepared module defines no memory');
  const count = new ByteReader(bytes, memory.start, memory.end).u32();
  if (count !== memories.length) throw new Error(`prepared module defines ${count} memories, expected ${memories.length}`);

  const imports = list.find((s) => s.id === SECTION_IMPORT);
  const entries = new ByteWriter();
  let importCount = 0;
  if (imports) {
    const r = new ByteReader(bytes, imports.start, imports.end);
    importCount = r.u32();
    entries.bytes(bytes.subarray(r.offset, imports.end));
  }
  for (const m of memories) {
    entries.name(ENGINE_MODULE);
    entries.name(m.field);
    entries.u8(KIND_MEMORY);
    if (m.maximum === undefined) {
      entries.u8(0);
      entries.u32(m.minimum);
    } else {
      entries.u8(1);
      entries.u32(m.minimum);
      entries.u32(m.maximum);
    }
  }
  const payload = new ByteWriter();
  payload.u32(importCount + memories.length);
  payload.bytes(entries.finish());

  const out = new ByteWriter();
  out.bytes(bytes.subarray(0, 8));
  let placed = false;
  for (const s of list) {
    if (!placed && (s.id === SECTION_IMPORT || (s.id !== 0 && s.id > SECTION_IMPORT))) {
      out.section(SECTION_IMPORT, payload.finish());
      placed = true;
    }
    if (s.id === SECTION_IMPORT || s.id === SECTION_MEMORY) continue;
    out.rawSection(bytes, s);
  }
  if (!placed) out.section(SECTION_IMPORT, payload.finish());
  return out.finish();
}
