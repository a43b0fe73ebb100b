// node tools/fuzz/save-fixture.ts MODULE_SEED [NOTE] [--restore P --gap N]
//
// Save generated module MODULE_SEED (as the fuzzer prints it) with its plan
// into test/fixtures/fuzz/, where test/fuzz/regressions.test.ts replays it.
// Mismatches are saved there by the fuzzer itself (reduced); this keeps
// cases worth replaying on every test run, such as modules that suspend and
// restore many times.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateModule } from './generate.ts';
import { planFor } from './modules.ts';
import { FIXTURES } from './reduce.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { restore: { type: 'string' }, gap: { type: 'string' } },
});
const seed = Number(positionals[0]);
if (!Number.isInteger(seed) || seed < 0) {
  process.stderr.write('usage: node tools/fuzz/save-fixture.ts MODULE_SEED [NOTE] [--restore P --gap N]\n');
  process.exit(2);
}
const plan = planFor(seed);
if (values.gap !== undefined) plan.gap = Number(values.gap);
if (values.restore !== undefined) plan.restore = Number(values.restore);
if (plan.gap > 0) plan.maxSuspensions ||= 200;
const file = path.join(FIXTURES, `module-${seed}.wasm`);
writeFileSync(file, await generateModule(seed));
writeFileSync(file.replace(/\.wasm$/, '.json'), JSON.stringify({ plan, note: positionals[1] }, null, 2) + '\n');
process.stdout.write(`${file}\n`);
