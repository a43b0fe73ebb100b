// Embedder mode: an instance linked to imports its embedder supplies (the spec
// runner's way of running arbitrary modules through Gate's preparation),
// calling any export with arguments, preempted, trapping, and restored from
// a snapshot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from './engine.ts';
import { Instance, type CompiledModule } from './instance.ts';
import { Cause, State } from './status.ts';
import { prepareModule } from '../prepare/prepare.ts';
import { instrumentationOf } from '../snapshot/instrumentation.ts';
import { readSnapshot } from '../snapshot/read.ts';
import { writeSnapshot } from '../snapshot/write.ts';
import type { InstanceState } from '../snapshot/state.ts';
import { body, functype, FUNCREF, I32, I64, name, section, vec, wasm, u32 } from '../wasm/testing.ts';

const FUNC = 0;

/** sum(n) = n + (n-1) + ... + 1 in a loop; div(a, b) = a / b (unsigned); a memory and a mutable global. */
const program = wasm(
  section(1, vec([functype([I32], [I64]), functype([I32, I32], [I32])])),
  section(3, vec([u32(0), u32(1)])),
  section(5, vec([[0, ...u32(1)]])),
  section(6, vec([[I32, 1, 0x41, ...u32(7), 0x0b]])),
  section(7, vec([[...name('sum'), FUNC, ...u32(0)], [...name('div'), FUNC, ...u32(1)]])),
  section(
    10,
    vec([
      body(
        [[1, I64]],
        [
          0x02, 0x40, 0x03, 0x40, // block loop
          0x20, 0, 0x45, 0x0d, 1, // br_if 1 (n == 0)
          0x20, 1, 0x20, 0, 0xad, 0x7c, 0x21, 1, // acc += extend(n)
          0x20, 0, 0x41, 1, 0x6b, 0x21, 0, // n -= 1
          0x23, 0, 0x41, 1, 0x6a, 0x24, 0, // global += 1
          0x0c, 0, // br 0
          0x0b, 0x0b,
          0x20, 1,
          0x0b,
        ],
      ),
      body([], [0x20, 0, 0x20, 1, 0x6e, 0x0b]),
    ]),
  ),
);

/** f(n) calls the imported a.sum(n). */
const caller = wasm(
  section(1, vec([functype([I32], [I64])])),
  section(2, vec([[...name('a'), ...name('sum'), FUNC, ...u32(0)]])),
  section(3, vec([u32(0)])),
  section(7, vec([[...name('f'), FUNC, ...u32(1)]])),
  section(10, vec([body([], [0x20, 0, 0x10, 0, 0x0b])])),
);

/**
 * outer(n) calls holder(n) three times and sums; holder keeps a funcref local
 * while it loops n times calling inc, a function with a loop of its own.
 * The funcref local is saved in the stack module's reference table when
 * holder is suspended.
 */
const holding = wasm(
  section(1, vec([functype([I32], [I32])])),
  section(3, vec([u32(0), u32(0), u32(0)])),
  section(7, vec([[...name('outer'), FUNC, ...u32(0)], [...name('holder'), FUNC, ...u32(1)]])),
  section(
    10,
    vec([
      body(
        [[2, I32]],
        [
          0x02, 0x40, 0x03, 0x40,
          0x20, 1, 0x41, 3, 0x46, 0x0d, 1, // k == 3: out
          0x20, 2, 0x20, 0, 0x10, 1, 0x6a, 0x21, 2, // sum += holder(n)
          0x20, 1, 0x41, 1, 0x6a, 0x21, 1, // k += 1
          0x0c, 0, 0x0b, 0x0b,
          0x20, 2, 0x0b,
        ],
      ),
      body(
        [[1, FUNCREF], [1, I32]],
        [
          0xd0, 0x70, 0x21, 1, // the reference
          0x02, 0x40, 0x03, 0x40,
          0x20, 0, 0x45, 0x0d, 1,
          0x20, 2, 0x10, 2, 0x21, 2, // acc = inc(acc)
          0x20, 0, 0x41, 1, 0x6b, 0x21, 0,
          0x0c, 0, 0x0b, 0x0b,
          0x20, 2, 0x20, 1, 0xd1, 0x6a, 0x0b, // acc + is_null(ref)
        ],
      ),
      body([], [0x03, 0x7f, 0x20, 0, 0x41, 1, 0x6a, 0x0b, 0x0b]),
    ]),
  ),
);

const engine = new Engine({ schedule: (fn) => queueMicrotask(fn) });

async function compile(bytes: Uint8Array): Promise<CompiledModule> {
  const prepared = await prepareModule(bytes, { abi: false });
  return { prepared, module: await WebAssembly.compile(prepared.bytes as Uint8Array<ArrayBuffer>), program: bytes };
}

function embedded(compiled: CompiledModule, imports: WebAssembly.Imports = {}, restore?: InstanceState): Instance {
  return new Instance({
    engine,
    compiled,
    services: () => ({ lookup: () => undefined }),
    context: { instance: '00000000-0000-4000-8000-000000000000', scope: [] },
    imports,
    restore,
  });
}

async function ready(compiled: CompiledModule, imports?: WebAssembly.Imports): Promise<Instance> {
  const instance = embedded(compiled, imports);
  assert.equal((await instance.run()).state, State.HALTED);
  return instance;
}

test('any export runs with arguments and its result is kept', async () => {
  const instance = await ready(await compile(program));
  const status = await instance.run({ function: 'sum', args: [1000] });
  assert.equal(status.state, State.HALTED);
  assert.equal(instance.returned, 500500n);
  await instance.run({ function: 'div', args: [7, 2] });
  assert.equal(instance.returned, 3);
});

test('a preempted call resumes where it was: the rewind restores its arguments', async () => {
  const instance = await ready(await compile(program));
  instance.suspendAfterFuel(instance.fuelConsumed + 20);
  let status = await instance.run({ function: 'sum', args: [1000] });
  let suspensions = 0;
  while (status.state === State.SUSPENDED) {
    suspensions++;
    instance.suspendAfterFuel(instance.fuelConsumed + 20);
    // Any value of the right type: the saved locals replace it.
    status = await instance.run({ args: [3] });
  }
  assert.equal(status.state, State.HALTED);
  assert.equal(instance.returned, 500500n);
  assert.ok(suspensions > 100, `${suspensions} suspensions`);
  assert.equal((instance.exports['gate_engine.global.0'] as WebAssembly.Global).value, 7 + 1000);
});

test('a trap ends the call with its cause; the instance stays callable', async () => {
  const instance = await ready(await compile(program));
  const trapped = await instance.run({ function: 'div', args: [1, 0] });
  assert.deepEqual([trapped.state, trapped.cause], [State.KILLED, Cause.INTEGER_DIVIDE_BY_ZERO]);
  assert.equal(instance.currentStatus.state, State.HALTED);
  await instance.run({ function: 'div', args: [6, 3] });
  assert.equal(instance.returned, 2);
  await assert.rejects(async () => instance.run({ function: 'nope' }), { code: 'ERR_ENTRY_NOT_FOUND' });
});

test('a suspended call continues in a fresh instance restored from a snapshot', async () => {
  const compiled = await compile(program);
  let instance = await ready(compiled);
  instance.suspendAfterFuel(instance.fuelConsumed + 500);
  let status = await instance.run({ function: 'sum', args: [1000] });
  let restores = 0;
  while (status.state === State.SUSPENDED) {
    const file = await writeSnapshot(compiled.program, instance.capture(), await instrumentationOf(compiled.prepared, compiled.program));
    const snapshot = await readSnapshot(file);
    instance = embedded(await compile(snapshot.program), {}, snapshot.state);
    restores++;
    instance.suspendAfterFuel(instance.fuelConsumed + 500);
    status = await instance.run({ args: [0] });
  }
  assert.equal(instance.returned, 500500n);
  assert.ok(restores > 3, `${restores} restores`);
});

test('an export called from another instance runs to its end: only the running instance unwinds', async () => {
  const a = await ready(await compile(program));
  const b = await ready(await compile(caller), { a: { sum: a.exports.sum } });
  b.suspendAfterFuel(b.fuelConsumed + 5);
  let status = await b.run({ function: 'f', args: [2000] });
  while (status.state === State.SUSPENDED) status = await b.run({ args: [0] });
  assert.equal(b.returned, 2001000n);
  assert.equal(a.currentStatus.state, State.HALTED);
});

test('a function that holds references is suspended inside too, its references kept', async () => {
  const instance = await ready(await compile(holding));
  instance.suspendAfterFuel(instance.fuelConsumed + 5);
  let status = await instance.run({ function: 'outer', args: [200] });
  let suspensions = 0;
  while (status.state === State.SUSPENDED) {
    suspensions++;
    instance.suspendAfterFuel(instance.fuelConsumed + 5);
    status = await instance.run({ args: [0] });
  }
  assert.equal(instance.returned, 3 * 201);
  // Every few units of fuel: inside holder's loop too, where the funcref is live.
  assert.ok(suspensions > 100, `${suspensions} suspensions`);
});
