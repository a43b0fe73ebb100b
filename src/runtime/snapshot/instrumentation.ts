// Which code a suspended stack belongs to: it names Gate's call sites of the
// program itself, so the rewrite's version and a digest of the program's own
// code section.

import type { PreparedModule } from '../prepare/prepared.ts';
import { parseModule, SectionId } from '../wasm/module.ts';
import { sha256 } from './format.ts';
import type { Instrumentation } from './write.ts';

export async function instrumentationOf(prepared: PreparedModule, program: Uint8Array): Promise<Instrumentation> {
  const info = parseModule(program);
  const code = info.sections.find((s) => s.id === SectionId.Code);
  const codeBytes = code ? program.subarray(code.start, code.end) : new Uint8Array(0);
  return { version: prepared.version, codeHash: await sha256(codeBytes) };
}
