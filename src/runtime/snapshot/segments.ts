// The data segments of a snapshot's program part (docs/snapshot.md). A
// program whose code names data segments (memory.init, data.drop: it has a
// data count section) keeps every segment at its index, as a passive one: a
// passive segment as it is, an active one empty (instantiation has applied
// and dropped it, and an empty segment behaves as a dropped one). Other
// programs keep none: the memory image is all their data.

import type { Writer } from '../wasm/binary.ts';
import { SectionId, type ModuleInfo } from '../wasm/module.ts';

/** Whether the program part keeps the program's data segments. */
export function keepsDataSegments(info: ModuleInfo): boolean {
  return info.dataCount !== undefined || info.data.some((d) => d.mode === 'passive');
}

/** How many segments writeProgramSegments writes. */
export function programSegmentCount(info: ModuleInfo, fromSnapshot: boolean): number {
  if (!keepsDataSegments(info)) return 0;
  return fromSnapshot ? info.data.filter((d) => d.mode === 'passive').length : info.data.length;
}

/**
 * Write the program part's segments (programSegmentCount of them): from an
 * original program, or from a program part or snapshot, whose program
 * segments are its passive ones (a snapshot's active ones are its memory).
 */
export function writeProgramSegments(out: Writer, bytes: Uint8Array, info: ModuleInfo, fromSnapshot: boolean): number {
  let n = 0;
  for (const seg of info.data) {
    if (seg.mode === 'passive') {
      out.bytes(bytes, seg.range.start, seg.range.end);
      n++;
    } else if (!fromSnapshot) {
      out.u8(1); // passive, empty
      out.u8(0);
      n++;
    }
  }
  return n;
}

/** A data count section. */
export function writeDataCount(out: Writer, count: number): void {
  out.u8(SectionId.DataCount);
  const m = out.beginSize();
  out.u32(count);
  out.endSize(m);
}
