// Which instrumented code a suspended stack belongs to: the instrumenter's
// version and a digest of the instrumented code section.

import type { PreparedModule } from '../prepare/prepared.ts';
import { parseModule, SectionId } from '../wasm/module.ts';
import { sha256 } from './format.ts';
import type { Instrumentation } from './write.ts';

export async function instrumentationOf(prepared: PreparedModule): Promise<Instrumentation> {
  const info = parseModule(prepared.bytes);
  const code = info.sections.find((s) => s.id === SectionId.Code);
  const codeBytes = code ? prepared.bytes.subarray(code.start, code.end) : new Uint8Array(0);
  return { version: prepared.version, codeHash: await sha256(codeBytes) };
}
