// Hibernation at the host level: an instance that waits is written to
// storage and its memory released; the event that ends its wait brings it
// back. A run hibernated at random waits (some of them dropped altogether
// and continued from the snapshot on another engine, as a server does with
// idle instances) ends with the same output, log and memory as one that was
// never interrupted. Also: the memory pool's capacity bounds live
// instances, and a full pool makes the longest-waiting ones hibernate.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { Hibernator, type HibernationStorage } from '../../src/host/hibernation.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance, type Hibernation } from '../../src/host/program-instance.ts';
import { captureInstance, restoreInstance } from '../../src/host/snapshot.ts';
import type { Engine } from '../../src/runtime/instance/engine.ts';
import { MemoryPool, MemoryPoolFull } from '../../src/runtime/instance/memory-pool.ts';
import { State, type Status } from '../../src/runtime/instance/status.ts';
import { Registry } from '../../src/services/index.ts';
import { guest, random } from '../helpers.ts';

const SEED = Number(process.env.GATE_TEST_SEED ?? 20261207);
const cache = new ModuleCache(null);

class MemoryStorage implements HibernationStorage {
  readonly files = new Map<string, Uint8Array>();
  private next = 0;
  async write(bytes: Uint8Array): Promise<string> {
    const name = `h${this.next++}`;
    this.files.set(name, bytes);
    return name;
  }
  async read(name: string): Promise<Uint8Array> {
    const bytes = this.files.get(name);
    if (!bytes) throw new Error(`no snapshot ${name}`);
    return bytes;
  }
  discard(name: string): void {
    this.files.delete(name);
  }
}

/**
 * A client that sends its lines one at a time, each after the answer to the
 * one before, so that the program gets the same reads in every run.
 */
function conversation(lines: string[]) {
  const out: Uint8Array[] = [];
  let answered = 0;
  let notify: (() => void) | undefined;
  let sent = 0;
  const text = () => Buffer.concat(out).toString();
  const readable = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        while (text().split('\n').length - 1 < sent) await new Promise<void>((r) => (notify = r));
        // A pause, as a person would make: long enough for the program to hibernate.
        await new Promise((r) => setTimeout(r, 20));
        if (sent === lines.length) {
          c.close();
          return;
        }
        c.enqueue(new TextEncoder().encode(`${lines[sent++]}\n`));
      },
    },
    { highWaterMark: 0 },
  );
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      out.push(chunk.slice());
      answered = text().split('\n').length - 1;
      notify?.();
    },
  });
  return { readable, writable, text, answered: () => answered };
}

interface Outcome {
  status: Status;
  output: string;
  log: string;
  memory: string;
  hibernations: number;
  drops: number;
}

const LINES = Array.from({ length: 10 }, (_, i) => `line ${i} ${'x'.repeat(i * 7)}`);

/**
 * Run idle.wasm to its end. `chance`: of hibernating at each wait; `dropChance`:
 * of then dropping an idle hibernated instance and continuing it from its
 * snapshot on a fresh engine.
 */
async function run(chance: number, dropChance: number, seed: number): Promise<Outcome> {
  const next = random(seed);
  const compiled = await cache.get(guest('examples/idle.wasm'));
  const logs: Uint8Array[] = [];
  const storage = new MemoryStorage();
  let hibernations = 0;
  let drops = 0;
  let engine: Engine = nodeEngine();
  let current: ProgramInstance;
  let done: Promise<Status>;
  let switched: (() => void) | undefined;

  const makeHibernation = (e: Engine): Hibernation => {
    const hibernator = new Hibernator({ engine: e, storage, idleMs: Infinity });
    return {
      waiting(p, waiting) {
        hibernator.waiting(p, waiting);
        if (!waiting || next() >= chance) return;
        void hibernator.hibernate(p).then(async (h) => {
          if (!h) return;
          hibernations++;
          if (!h.idle || next() >= dropChance) return;
          // Dropped, as a server drops idle instances, and continued elsewhere.
          drops++;
          const bytes = await storage.read(h.name);
          p.dispose();
          engine = nodeEngine();
          current = await restoreInstance(bytes, {
            cache,
            engine,
            registry: new Registry(),
            context: { instance: 'idle', scope: [] },
            debug: (c) => logs.push(c),
            continueWait: true,
            hibernation: makeHibernation(engine),
          });
          done = current.run();
          switched?.();
        });
      },
      forget(p) {
        hibernator.forget(p);
      },
    };
  };

  current = new ProgramInstance({
    engine,
    compiled,
    registry: new Registry(),
    context: { instance: 'idle', scope: [] },
    function: 'idle',
    debug: (c) => logs.push(c),
    hibernation: makeHibernation(engine),
  });
  done = current.run();
  // The client joins whichever instance is current when the program accepts.
  const client = conversation(LINES);
  for (;;) {
    const p = current;
    const joined = await p.connect(client.readable, client.writable);
    if (joined) break;
    if (p === current) await new Promise<void>((r) => (switched = r));
  }
  let status: Status;
  for (;;) {
    const d = done;
    status = await d;
    if (d === done) break; // the instance that ran to the end, not one that was dropped
  }
  return {
    status,
    output: client.text(),
    log: Buffer.concat(logs).toString(),
    memory: createHash('sha256').update((await captureInstance(current)).memory).digest('hex'),
    hibernations,
    drops,
  };
}

describe('hibernation', () => {
  it('a run hibernated at random waits ends exactly as an uninterrupted one', async () => {
    const plain = await run(0, 0, SEED);
    assert.equal(plain.status.state, State.HALTED);
    assert.equal(plain.hibernations, 0);
    assert.match(plain.log, /^round \d+\n(round \d+\n){11}total \d+\n$/);
    assert.equal(plain.output.split('\n').length - 1, LINES.length);
    let hibernations = 0;
    let drops = 0;
    for (let i = 1; i <= 6; i++) {
      const moved = await run(0.6, 0.7, SEED + i);
      assert.deepEqual(moved.status, plain.status);
      assert.equal(moved.output, plain.output);
      assert.equal(moved.log, plain.log);
      assert.equal(moved.memory, plain.memory);
      hibernations += moved.hibernations;
      drops += moved.drops;
    }
    // Both kinds happened (a snapshot is written within a few milliseconds, the naps are longer).
    assert.ok(hibernations >= 10, `hibernations: ${hibernations}`);
    assert.ok(drops >= 2, `drops: ${drops}`);
  });

  it('keeps live instances within the pool: a full pool hibernates the longest waiting', async () => {
    const pool = new MemoryPool({ capacity: 3 });
    const engine = nodeEngine({ memories: pool });
    const storage = new MemoryStorage();
    const hibernator = new Hibernator({ engine, storage, idleMs: Infinity });
    const compiled = await cache.get(guest('examples/wait.wasm'));
    const programs: ProgramInstance[] = [];
    const runs: Promise<Status>[] = [];
    const start = async () => {
      await pool.room();
      const p = new ProgramInstance({
        engine,
        compiled,
        registry: new Registry(),
        context: { instance: `w${programs.length}`, scope: [] },
        function: 'wait',
        hibernation: hibernator,
      });
      programs.push(p);
      runs.push(p.run());
    };
    for (let i = 0; i < 3; i++) await start();
    assert.equal(pool.stats.inUse, 3);
    assert.throws(
      () => new ProgramInstance({ engine, compiled, registry: new Registry(), context: { instance: 'x', scope: [] }, function: 'wait' }),
      MemoryPoolFull,
    );
    // Six more: each waits for room, which the hibernation of a waiting one makes.
    for (let i = 0; i < 6; i++) await start();
    assert.ok(pool.stats.inUse <= 3, `in use: ${pool.stats.inUse}`);
    assert.ok(hibernator.stats.hibernated >= 6);
    // Every one of them still answers, woken in turn.
    for (const [i, p] of programs.entries()) {
      const chunks: Uint8Array[] = [];
      const input = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(`hello ${i}\n`));
          c.close();
        },
      });
      await p.connect(input, new WritableStream({ write: (c) => void chunks.push(c.slice()) }));
      assert.equal(Buffer.concat(chunks).toString(), `HELLO ${i}\n`);
      assert.equal((await runs[i]).state, State.HALTED);
      assert.ok(pool.stats.inUse <= 3);
      p.dispose();
    }
    assert.equal(pool.stats.inUse, 0);
  });
});
