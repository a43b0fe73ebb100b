// Which instrumenter prepares programs in this process: GATE_ENGINE=portable
// (or v2) selects our own rewrite while Binaryen's stays the default.

import { setDefaultInstrumenter } from '../runtime/prepare/prepare.ts';

const choice = process.env.GATE_ENGINE;
if (choice === 'portable' || choice === 'v2') setDefaultInstrumenter('portable');
else if (choice === 'binaryen' || choice === 'v1') setDefaultInstrumenter('binaryen');
