// Which code a suspended stack belongs to. An Asyncify stack (Binaryen,
// engine v1) is only valid with the same instrumented code: its version and
// a digest of the instrumented code section. A portable stack (engine v2)
// names Gate call sites of the program itself: its version and a digest of
// the program's own code section.

import type { PreparedModule } from '../prepare/prepared.ts';
import { parseModule, SectionId } from '../wasm/module.ts';
import { sha256 } from './format.ts';
import type { Instrumentation } from './write.ts';

export async function instrumentationOf(prepared: PreparedModule, program: Uint8Array): Promise<Instrumentation> {
  const portable = prepared.info.instrumenter === 'portable';
  const bytes = portable ? program : prepared.bytes;
  const info = parseModule(bytes);
  const code = info.sections.find((s) => s.id === SectionId.Code);
  const codeBytes = code ? bytes.subarray(code.start, code.end) : new Uint8Array(0);
  return { version: prepared.version, codeHash: await sha256(codeBytes), portable };
}
