// Binary rewrites that make a valid module readable by Binaryen without
// changing what it does. Binaryen 132 mishandles two valid shapes:
// - A declarative element segment is dropped on reading, so a table.init or
//   elem.drop that names it fails to parse ("error in parsing wasm binary").
//   Each declarative segment becomes an empty passive segment of the same
//   type (which behaves exactly like a declarative one: both act as already
//   dropped), and the original is appended after all the others, where no
//   instruction names it but its functions stay declared for ref.func.
// - Binaryen's setMemory replaces the data segments, so the memory 0 that a
//   memoryless module gets (so that Asyncify's memory is always memory 1) is
//   added here, in the binary, instead.

import { Writer } from '../wasm/binary.ts';
import { parseModule, SectionId, SECTION_ORDER, type ModuleInfo } from '../wasm/module.ts';

const REF_TYPE_CODES = { funcref: 0x70, externref: 0x6f } as const;

/** The module with its declarative element segments made readable (see above); the input when it has none. */
export function moveDeclarativeSegments(bytes: Uint8Array, info: ModuleInfo = parseModule(bytes)): Uint8Array {
  const declarative = info.elements.filter((s) => s.mode === 'declarative');
  if (declarative.length === 0) return bytes;
  const section = info.sections.find((s) => s.id === SectionId.Element)!;
  const out = new Writer(bytes.byteLength + 16 * declarative.length);
  out.bytes(bytes, 0, section.start);
  out.u8(SectionId.Element);
  const size = out.beginSize();
  out.u32(info.elements.length + declarative.length);
  for (const seg of info.elements) {
    if (seg.mode !== 'declarative') {
      out.bytes(bytes, seg.range.start, seg.range.end);
      continue;
    }
    // Declarative flags 3 and 7 become passive 1 and 5; the element kind (0x00) or type follows.
    out.u32(seg.flags - 2);
    out.u8(seg.encoding === 'indices' ? 0 : REF_TYPE_CODES[seg.type]);
    out.u32(0);
  }
  for (const seg of declarative) out.bytes(bytes, seg.range.start, seg.range.end);
  out.endSize(size);
  out.bytes(bytes, section.end, bytes.byteLength);
  return out.finish();
}

/** The module with an empty, non-growable memory 0 added. It must not have a memory. */
export function addEmptyMemory(bytes: Uint8Array, info: ModuleInfo = parseModule(bytes)): Uint8Array {
  if (info.memories.length > 0 || info.importedMemories > 0) throw new Error('module already has a memory');
  // An empty memory section (a count of zero) is replaced; otherwise the new one goes where it belongs.
  const memoryOrder = SECTION_ORDER[SectionId.Memory];
  const existing = info.sections.find((s) => s.id === SectionId.Memory);
  const next = existing ?? info.sections.find((s) => s.id !== SectionId.Custom && SECTION_ORDER[s.id] > memoryOrder);
  const at = next ? next.start : bytes.byteLength;
  const out = new Writer(bytes.byteLength + 8);
  out.bytes(bytes, 0, at);
  // One memory, limits with a maximum: 0 pages, at most 0 pages.
  out.bytes(Uint8Array.of(SectionId.Memory, 4, 1, 1, 0, 0));
  out.bytes(bytes, existing ? existing.end : at, bytes.byteLength);
  return out.finish();
}

/**
 * The module without its custom sections. Binaryen 132 refuses some that V8
 * ignores, as the spec says it should (a name section holding invalid UTF-8 or
 * out-of-order subsections: found by fuzzing the loader), and it does not
 * write them back here anyway (debug info is off), so it never sees them.
 */
export function withoutCustomSections(bytes: Uint8Array, info: ModuleInfo = parseModule(bytes)): Uint8Array {
  if (!info.sections.some((s) => s.id === SectionId.Custom)) return bytes;
  const out = new Writer(bytes.byteLength);
  out.bytes(bytes, 0, 8);
  for (const s of info.sections) if (s.id !== SectionId.Custom) out.bytes(bytes, s.start, s.end);
  return out.finish();
}
