// The worker-thread executor, through the Executor interface the server uses:
// output, streaming with backpressure, placement across threads, migration of
// a suspended conversation between threads, kill, traps, inspection, and a
// stuck thread being detected and replaced while the others keep serving.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/host/module-cache.ts';
import { Cause, State, type Status } from '../../src/runtime/instance/status.ts';
import { ExecError, InProcessExecutor, type CreateOptions, type ExecInstance } from '../../src/server/exec/executor.ts';
import { WorkerExecutor, type WorkerLostReport } from '../../src/server/exec/worker-executor.ts';
import { guest, until } from '../helpers.ts';

const PAGES = 512;
// Prepared modules on disk, shared by the executors of this file (each has its own preparer thread).
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'gate-worker-test-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const encoder = new TextEncoder();

function createOptions(file: string, fn?: string, extra: Partial<CreateOptions> = {}): CreateOptions {
  const bytes = guest(file);
  return {
    bytes,
    hash: sha256Hex(bytes),
    function: fn,
    context: { instance: crypto.randomUUID(), scope: [] },
    maxMemoryPages: PAGES,
    ...extra,
  };
}

/**
 * A client whose input is fed by the test while the connection lasts, and
 * whose output is collected.
 */
class Client {
  readonly chunks: Uint8Array[] = [];
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #input!: ReadableStreamDefaultController<Uint8Array>;

  constructor() {
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#input = c;
      },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: (c) => {
        this.chunks.push(c.slice());
      },
    });
  }

  send(text: string): void {
    this.#input.enqueue(encoder.encode(text));
  }

  end(): void {
    this.#input.close();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

/** Run to the end with one client that sends input (or nothing) and collects the output. */
async function runWithClient(inst: ExecInstance, input?: string): Promise<{ status: Status; output: string }> {
  const client = new Client();
  if (input !== undefined) client.send(input);
  client.end();
  const run = inst.run();
  const joined = inst.connect(input === undefined ? null : client.readable, client.writable);
  const status = await run;
  await joined;
  return { status, output: client.text() };
}

describe('WorkerExecutor', () => {
  let executor: WorkerExecutor;

  before(() => {
    executor = new WorkerExecutor({
      workers: 2,
      cacheDir,
      services: { module: new URL('./worker-services.ts', import.meta.url), options: { test: true } },
    });
  });

  after(async () => {
    await executor.close();
  });

  it('runs hello in a worker and streams its output', async () => {
    const inst = await executor.create(createOptions('examples/hello.wasm', 'greet'));
    assert.equal(inst.status.state, State.SUSPENDED);
    // Its memory and its table of one entry.
    assert.equal(inst.memoryLimit, PAGES * 65536 + 32);
    assert.notEqual(executor.workerOf(inst), undefined);
    const { status, output } = await runWithClient(inst);
    assert.deepEqual(status, { state: State.HALTED, cause: Cause.NORMAL, result: 0 });
    assert.equal(inst.status.state, State.HALTED);
    assert.equal(output, 'hello, world\n');
    inst.release();
  });

  it('reports module facts and refuses garbage as a module error', async () => {
    const o = createOptions('examples/hello.wasm');
    const facts = await executor.prepare(o.bytes, o.hash, PAGES);
    assert.equal(facts.snapshot, false);
    assert.ok(facts.entries.includes('greet'));
    const garbage = encoder.encode('not a wasm module');
    await assert.rejects(executor.prepare(garbage, sha256Hex(garbage), PAGES), (e: unknown) => e instanceof ExecError && e.kind === 'module');
    await assert.rejects(
      executor.create({ ...o, bytes: garbage, hash: sha256Hex(garbage) }),
      (e: unknown) => e instanceof ExecError && e.kind === 'module',
    );
  });

  it('refuses an unknown entry function as an entry error', async () => {
    const inst = await executor.create(createOptions('examples/hello.wasm', 'greet'));
    await runWithClient(inst);
    inst.release();
    await assert.rejects(
      executor.create(createOptions('examples/hello.wasm', 'no_such_function')),
      (e: unknown) => e instanceof ExecError && e.kind === 'entry',
    );
  });

  it('passes the debug log and the exit result across the thread boundary', async () => {
    const log: Uint8Array[] = [];
    const inst = await executor.create(createOptions('examples/hello.wasm', 'fail', { debug: (c) => log.push(c) }));
    const status = await inst.run();
    assert.deepEqual(status, { state: State.TERMINATED, cause: Cause.NORMAL, result: 1 });
    assert.equal(Buffer.concat(log).toString(), 'exiting with return value 1\n');
    inst.release();
  });

  it('builds server-wide services in the worker threads', async () => {
    const log: Uint8Array[] = [];
    const inst = await executor.create(createOptions('examples/hello.wasm', 'test_ext', { debug: (c) => log.push(c) }));
    const status = await inst.run();
    assert.deepEqual(status, { state: State.HALTED, cause: Cause.NORMAL, result: 0 });
    assert.equal(Buffer.concat(log).toString(), 'test_ext: ok\n');
    inst.release();
  });

  it('echoes a large input with bounded buffering between client and program', async () => {
    const total = 8 * 1024 * 1024;
    const chunk = 64 * 1024;
    const pattern = new Uint8Array(chunk);
    for (let i = 0; i < chunk; i++) pattern[i] = (i * 31 + 7) & 0xff;
    let pulled = 0;
    let received = 0;
    let mostAhead = 0;
    const input = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (pulled >= total) {
            c.close();
            return;
          }
          pulled += chunk;
          mostAhead = Math.max(mostAhead, pulled - received);
          c.enqueue(pattern.slice());
        },
      },
      { highWaterMark: 0 },
    );
    let mismatch = -1;
    const output = new WritableStream<Uint8Array>({
      async write(c) {
        for (let i = 0; i < c.byteLength && mismatch < 0; i++) {
          if (c[i] !== pattern[(received + i) % chunk]) mismatch = received + i;
        }
        received += c.byteLength;
        // A slow client: without backpressure the input would run far ahead.
        await new Promise((r) => setTimeout(r, 1));
      },
    });
    const inst = await executor.create(createOptions('examples/echo.wasm', 'echo'));
    const run = inst.run();
    const joined = await inst.connect(input, output);
    const status = await run;
    assert.equal(joined, true);
    assert.equal(status.state, State.HALTED);
    assert.equal(mismatch, -1);
    assert.equal(received, total);
    // Window per direction and thread hop (256 KiB + a 64 KiB chunk each way),
    // the program's buffers and the origin ring: well under 2 MiB in all.
    assert.ok(mostAhead <= 2 * 1024 * 1024, `input ran ${mostAhead} bytes ahead of the output`);
    inst.release();
  });

  it('places concurrent instances across the worker threads', async () => {
    const insts = await Promise.all([1, 2, 3, 4].map(() => executor.create(createOptions('examples/hello.wasm', 'greet'))));
    const perWorker = new Map<number, number>();
    for (const inst of insts) perWorker.set(executor.workerOf(inst)!, (perWorker.get(executor.workerOf(inst)!) ?? 0) + 1);
    assert.deepEqual([...perWorker.values()], [2, 2]);
    assert.deepEqual(
      executor.workers().map((w) => w.instances),
      [2, 2],
    );
    const results = await Promise.all(insts.map((inst) => runWithClient(inst)));
    for (const r of results) assert.equal(r.output, 'hello, world\n');
    for (const inst of insts) inst.release();
    assert.deepEqual(
      executor.workers().map((w) => w.instances),
      [0, 0],
    );
  });

  it('suspends, snapshots, and restores in another worker with the same output', async () => {
    // Uninterrupted, in this thread: the reference output.
    const inProcess = new InProcessExecutor({ cacheDir });
    const whole = await inProcess.create(createOptions('examples/wait.wasm', 'wait'));
    const reference = await runWithClient(whole, 'abc\ndef\n');
    whole.release();
    assert.equal(reference.output, 'ABC\nDEF\n');

    const first = await executor.create(createOptions('examples/wait.wasm', 'wait'));
    const a = new Client();
    const run = first.run();
    const joinedA = first.connect(a.readable, a.writable);
    a.send('abc\n');
    await until(() => a.text() === 'ABC\n', 10000, 'first reply');
    first.suspend();
    assert.equal((await run).state, State.SUSPENDED);
    assert.equal(await joinedA, true);
    const snapshot = await first.snapshot();
    assert.ok(snapshot.byteLength > 0);

    const second = await executor.create({ ...createOptions('examples/wait.wasm'), bytes: snapshot, hash: sha256Hex(snapshot) });
    assert.notEqual(executor.workerOf(second), executor.workerOf(first), 'restored on the other thread');
    assert.equal(second.status.state, State.SUSPENDED);
    first.release();
    const b = await runWithClient(second, 'def\n');
    assert.equal(b.status.state, State.HALTED);
    assert.equal(a.text() + b.output, reference.output);
    second.release();
  });

  it('restores a snapshot made by another executor', async () => {
    const inst = await executor.create(createOptions('examples/wait.wasm', 'wait'));
    const client = new Client();
    const run = inst.run();
    const joined = inst.connect(client.readable, client.writable);
    client.send('first\n');
    await until(() => client.text() === 'FIRST\n', 10000, 'reply');
    inst.suspend();
    await run;
    await joined;
    const snapshot = await inst.snapshot();
    inst.release();

    // Nothing of the program is known there: the worker names it, the preparer extracts it.
    const other = new WorkerExecutor({ workers: 1, cacheDir });
    try {
      const restored = await other.create({ ...createOptions('examples/wait.wasm'), bytes: snapshot, hash: sha256Hex(snapshot) });
      const { status, output } = await runWithClient(restored, 'second\n');
      assert.equal(status.state, State.HALTED);
      assert.equal(output, 'SECOND\n');
      restored.release();
    } finally {
      await other.close();
    }
  });

  it('still reports the end of a run whose instance was released', async () => {
    const inst = await executor.create(createOptions('wat/loop.wasm', 'spin'));
    const run = inst.run();
    inst.release();
    assert.equal((await run).state, State.KILLED);
    await until(() => executor.workers().every((w) => w.instances === 0), 10000, 'instance forgotten');
  });

  it('gives up a connect that was never accepted when its signal aborts, leaving the streams alone', async () => {
    const inst = await executor.create(createOptions('wat/loop.wasm', 'spin'));
    const run = inst.run();
    const client = new Client();
    const abort = new AbortController();
    const joined = inst.connect(client.readable, client.writable, abort.signal);
    abort.abort(new Error('client went away'));
    assert.equal(await joined, false);
    assert.equal(client.readable.locked, false);
    assert.equal(client.writable.locked, false);
    inst.kill();
    assert.equal((await run).state, State.KILLED);
    inst.release();
  });

  it('tells the program when its client goes away, and the next client takes over', async () => {
    const inst = await executor.create(createOptions('examples/counter.wasm', 'count_fast'));
    const run = inst.run();
    let first = '';
    const leaving = new WritableStream<Uint8Array>({
      write(c) {
        first += Buffer.from(c).toString();
        if (first.length > 2000) throw new Error('client went away');
      },
    });
    assert.equal(await inst.connect(null, leaving), true);
    const next = new Client();
    const abort = new AbortController();
    const joined = inst.connect(null, next.writable, abort.signal);
    await until(() => next.text().split('\n').length > 10, 10000, 'second client output');
    abort.abort();
    assert.equal(await joined, true);
    inst.kill();
    assert.equal((await run).state, State.KILLED);
    inst.release();
    // Numbering goes on where the first client left.
    const lastSeen = Number(first.split('\n').at(-2));
    const firstNext = Number(next.text().split('\n')[0]);
    assert.ok(firstNext > lastSeen, `${firstNext} follows ${lastSeen}`);
  });

  it('inspects the memory and globals of a suspended instance', async () => {
    const inst = await executor.create(createOptions('examples/wait.wasm', 'wait'));
    const client = new Client();
    const run = inst.run();
    const joined = inst.connect(client.readable, client.writable);
    client.send('xyz\n');
    await until(() => client.text() === 'XYZ\n', 10000, 'reply');
    await assert.rejects(inst.inspect(), (e: unknown) => e instanceof ExecError && e.kind === 'state');
    inst.suspend();
    await run;
    await joined;
    const { memory, globals } = await inst.inspect();
    assert.equal(memory.byteLength % 65536, 0);
    assert.ok(memory.byteLength > 0);
    // The program's last line is still in its line buffer memory.
    assert.ok(Buffer.from(memory).includes('XYZ\n'));
    assert.ok(globals.length > 0, 'the stack pointer global at least');
    inst.release();
  });

  it('kills a running instance and a suspended one', async () => {
    const spinning = await executor.create(createOptions('wat/loop.wasm', 'spin'));
    const run = spinning.run();
    assert.equal(spinning.status.state, State.RUNNING);
    spinning.kill();
    assert.deepEqual(await run, { state: State.KILLED, cause: Cause.NORMAL, result: 0 });
    await assert.rejects(spinning.run(), (e: unknown) => e instanceof ExecError && e.kind === 'state');
    spinning.release();

    const idle = await executor.create(createOptions('wat/loop.wasm', 'spin'));
    idle.kill();
    assert.equal(idle.status.state, State.KILLED);
    // The worker agrees: a snapshot of it is a killed instance.
    const snapshot = await idle.snapshot();
    const again = await executor.create({ ...createOptions('wat/loop.wasm'), bytes: snapshot, hash: sha256Hex(snapshot) });
    assert.equal(again.status.state, State.KILLED);
    idle.release();
    again.release();
  });

  it('reports a trap with its cause', async () => {
    const log: Uint8Array[] = [];
    const inst = await executor.create(createOptions('examples/traps.wasm', 'divide_by_zero', { debug: (c) => log.push(c) }));
    const status = await inst.run();
    assert.equal(status.state, State.KILLED);
    assert.equal(status.cause, Cause.INTEGER_DIVIDE_BY_ZERO);
    assert.equal(Buffer.concat(log).toString(), 'trap: divide_by_zero\n');
    inst.release();
  });

  it('refuses instances beyond its limit with a clear error', async () => {
    const small = new WorkerExecutor({ workers: 1, cacheDir, maxInstances: 1, memoryWait: 200 });
    try {
      const [one, two] = await Promise.allSettled([
        small.create(createOptions('wat/loop.wasm', 'spin')),
        small.create(createOptions('wat/loop.wasm', 'spin')),
      ]);
      assert.equal(one.status, 'fulfilled');
      assert.equal(two.status, 'rejected');
      // The first spins (never waits), so nothing can hibernate to make room.
      const refused = (two as PromiseRejectedResult).reason as ExecError;
      assert.equal(refused.kind, 'busy');
      assert.match(refused.message, /no room for another live instance: every memory is in use \(live instances per worker process = 1\)/);
      (one as PromiseFulfilledResult<ExecInstance>).value.release();
      const three = await small.create(createOptions('wat/loop.wasm', 'spin'));
      three.release();
    } finally {
      await small.close();
    }
  });

  it('has no blocking hook unless asked for one', () => {
    assert.throws(() => executor.blockWorkerForTest(executor.workers()[0].id), /ERR_TEST_HOOKS_DISABLED/);
  });
});

describe('WorkerExecutor watchdog', () => {
  it('kills the instances of a stuck worker, replaces it, and keeps serving on the others', async () => {
    const reports: WorkerLostReport[] = [];
    const executor = new WorkerExecutor({
      workers: 2,
      cacheDir,
      testHooks: true,
      heartbeatInterval: 100,
      stuckTimeout: 3000,
      onWorkerLost: (r) => reports.push(r),
    });
    try {
      const doomedOptions = createOptions('examples/wait.wasm', 'wait');
      const doomed = await executor.create(doomedOptions);
      const survivor = await executor.create(createOptions('examples/wait.wasm', 'wait'));
      const stuckId = executor.workerOf(doomed)!;
      assert.notEqual(executor.workerOf(survivor), stuckId);

      const a = new Client();
      const b = new Client();
      const runA = doomed.run();
      const runB = survivor.run();
      const joinedA = doomed.connect(a.readable, a.writable);
      const joinedB = survivor.connect(b.readable, b.writable);
      a.send('one\n');
      b.send('one\n');
      await until(() => a.text() === 'ONE\n' && b.text() === 'ONE\n', 10000, 'first replies');

      executor.blockWorkerForTest(stuckId);
      const statusA = await runA;
      assert.equal(statusA.state, State.KILLED);
      assert.equal(statusA.cause, Cause.INTERNAL);
      assert.match(statusA.error ?? '', /stopped answering/);
      assert.equal(doomed.status.cause, Cause.INTERNAL);
      assert.equal(await joinedA, true, 'the cut client learns its connection is over');
      await assert.rejects(doomed.snapshot(), (e: unknown) => e instanceof ExecError && e.kind === 'internal');
      doomed.release();

      assert.equal(reports.length, 1);
      assert.equal(reports[0].worker, stuckId);
      assert.equal(reports[0].kind, 'stuck');
      assert.deepEqual(reports[0].instances, [doomedOptions.context.instance]);

      // The other thread's instance was never disturbed.
      assert.equal(survivor.status.state, State.RUNNING);
      b.send('two\n');
      await until(() => b.text() === 'ONE\nTWO\n', 10000, 'survivor reply');
      b.end();
      assert.equal((await runB).state, State.HALTED);
      assert.equal(await joinedB, true);
      survivor.release();

      // A replacement thread serves new instances.
      await until(() => executor.workers().length === 2 && executor.workers().every((w) => !w.stuck), 10000, 'replacement');
      const ids = executor.workers().map((w) => w.id);
      assert.ok(!ids.includes(stuckId));
      const insts = await Promise.all([1, 2].map(() => executor.create(createOptions('examples/hello.wasm', 'greet'))));
      assert.deepEqual(new Set(insts.map((i) => executor.workerOf(i))), new Set(ids));
      for (const inst of insts) assert.equal((await runWithClient(inst)).output, 'hello, world\n');
    } finally {
      await executor.close();
    }
  });
});

describe('WorkerExecutor peers', () => {
  it('lets instances in different worker processes meet through the peer service', async () => {
    const channel = `gate-peer-test-${crypto.randomUUID()}`;
    const executor = new WorkerExecutor({
      workers: 2,
      cacheDir,
      services: { module: new URL('../../src/services/node/registry.ts', import.meta.url), options: { peer: { enabled: true, channel } } },
      relayChannels: [channel],
    });
    try {
      const alice = 'ed25519:' + 'A'.repeat(43);
      const program = (fn: string, log: Uint8Array[]) =>
        executor.create(createOptions('services/peer.wasm', fn, { context: { instance: crypto.randomUUID(), principal: alice, scope: [] }, debug: (c) => log.push(c) }));
      const echoerLog: Uint8Array[] = [];
      const echoer = await program('echoer', echoerLog);
      const echoed = echoer.run();
      await until(() => Buffer.concat(echoerLog).toString().startsWith('joined\n'), 10000, 'the echoer to join');
      // Peers learn of each other a moment after they join (the announcement crosses the server): a caller
      // that found none yet halts at once, and the next one is started.
      let callerLog: Uint8Array[] = [];
      for (let tries = 0; ; tries++) {
        callerLog = [];
        const caller = await program('caller', callerLog);
        if (tries === 0) assert.notEqual(executor.workerOf(echoer), executor.workerOf(caller), 'one in each worker');
        assert.equal((await caller.run()).state, State.HALTED);
        caller.release();
        if (Buffer.concat(callerLog).toString() !== 'no peers\n' || tries === 50) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal((await echoed).state, State.HALTED);
      assert.equal(Buffer.concat(callerLog).toString(), 'connected\necho=msg0\necho=msg1\necho=msg2\ndone\n');
      assert.equal(Buffer.concat(echoerLog).toString(), 'joined\naccepted\nechoed=msg0\nechoed=msg1\nechoed=msg2\ndone\n');
    } finally {
      await executor.close();
    }
  });
});
