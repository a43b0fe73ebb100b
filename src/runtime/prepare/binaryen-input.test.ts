// Valid modules that Binaryen cannot take as they are, and the ones module
// preparation refuses, with the feature named.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareModule } from './prepare.ts';
import { addEmptyMemory, moveDeclarativeSegments } from './binaryen-input.ts';
import { parseModule } from '../wasm/module.ts';
import { trapCause } from '../instance/trap.ts';
import { body, functype, FUNCREF, I32, name, section, vec, wasm, u32 } from '../wasm/testing.ts';

const FUNC = 0;

/** init(n): table.init of a declarative segment; ref(): ref.func of the function it declares. */
const declarative = wasm(
  section(1, vec([functype([], []), functype([I32], []), functype([], [FUNCREF])])),
  section(3, vec([u32(0), u32(1), u32(2)])),
  section(4, vec([[FUNCREF, 0, ...u32(10)]])),
  section(7, vec([[...name('init'), FUNC, ...u32(1)], [...name('ref'), FUNC, ...u32(2)]])),
  section(9, vec([[3, 0, ...vec([u32(0)])]])),
  section(
    10,
    vec([
      body([], [0x0b]),
      body([], [0x41, 0, 0x41, 0, 0x20, 0, 0xfc, 12, 0, 0, 0x0b]),
      body([], [0xd2, 0, 0x0b]),
    ]),
  ),
);

/** A memoryless module with a passive data segment that it drops. */
const dropsData = wasm(
  section(1, vec([functype([], [])])),
  section(3, vec([u32(0)])),
  section(7, vec([[...name('drop'), FUNC, ...u32(0)]])),
  section(12, u32(1)),
  section(10, vec([body([], [0xfc, 9, 0, 0x0b])])),
  section(11, vec([[1, ...vec([[0x67], [0x6f]])]])),
);

test('a declarative segment becomes an empty passive one; its functions stay declared', async () => {
  const moved = moveDeclarativeSegments(declarative);
  const info = parseModule(moved);
  assert.deepEqual(info.elements.map((s) => [s.mode, s.count]), [['passive', 0], ['declarative', 1]]);
  // Same behaviour as the original, on V8.
  for (const bytes of [declarative, moved]) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
    const init = instance.exports.init as (n: number) => void;
    init(0);
    assert.throws(() => init(1), (e) => trapCause(e) !== undefined);
    assert.equal(typeof (instance.exports.ref as () => unknown)(), 'function');
  }
  // And Binaryen can now read it.
  const prepared = await prepareModule(declarative, { abi: false });
  assert.ok(WebAssembly.validate(prepared.bytes as Uint8Array<ArrayBuffer>));
});

test('a memoryless module keeps its data segments when it gets the engine memory', async () => {
  const prepared = await prepareModule(dropsData, { abi: false });
  const imports = {
    gate_engine: {
      tick: () => 1000,
      memory: new WebAssembly.Memory({ initial: 0, maximum: 0 }),
      asyncify_memory: new WebAssembly.Memory({ initial: 1 }),
    },
  };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>), imports);
  (instance.exports.drop as () => void)();
});

test('an empty memory section is replaced, not duplicated', () => {
  const bytes = wasm(section(1, vec([functype([], [])])), section(3, vec([u32(0)])), section(5, vec([])), section(10, vec([body([], [0x0b])])));
  const out = addEmptyMemory(bytes);
  assert.ok(WebAssembly.validate(out as Uint8Array<ArrayBuffer>));
  assert.equal(parseModule(out).memories.length, 1);
});

test('two memories are refused, naming multi-memory', async () => {
  const bytes = wasm(section(5, vec([[0, 0], [0, 0]])));
  await assert.rejects(prepareModule(bytes, { abi: false }), { code: 'ERR_MODULE_FEATURE', message: /multi-memory/ });
});
