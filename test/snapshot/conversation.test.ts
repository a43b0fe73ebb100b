// Live migration of a conversation: a client talks to a program, the program
// is suspended (while computing or while blocked waiting for input),
// snapshotted, restored on a "new host", and a new client takes over the
// connection. The client sees the same bytes as in an uninterrupted run, and
// the program ends with the same memory.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import type { ProgramInstance } from '../../src/host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import type { Status } from '../../src/runtime/instance/status.ts';
import { Registry } from '../../src/services/index.ts';
import { launch, random } from '../helpers.ts';

const SEED = Number(process.env.GATE_TEST_SEED ?? 20261201);

/**
 * The client's side of one connection: input it feeds (handed over only as
 * the host reads it, so what a cut connection never read moves on to the
 * next one), output it collects.
 */
class Connection {
  readonly chunks: Uint8Array[] = [];
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #unread: Uint8Array[];
  #ended: boolean;
  #wake: (() => void) | null = null;
  #cancelled = false;
  #listeners: (() => void)[] = [];

  constructor(previous?: Connection) {
    this.#unread = previous ? previous.#unread.splice(0) : [];
    this.#ended = previous ? previous.#ended : false;
    this.readable = new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          while (this.#unread.length === 0 && !this.#ended && !this.#cancelled) {
            await new Promise<void>((r) => (this.#wake = r));
          }
          // A cut connection keeps what it did not hand over.
          if (this.#cancelled) return;
          if (this.#unread.length > 0) c.enqueue(this.#unread.shift()!);
          else c.close();
        },
        cancel: () => {
          this.#cancelled = true;
          this.#wake?.();
        },
      },
      { highWaterMark: 0 },
    );
    this.writable = new WritableStream<Uint8Array>({
      write: (c) => {
        this.chunks.push(c.slice());
        for (const l of this.#listeners.splice(0)) l();
      },
    });
  }

  write(bytes: Uint8Array): void {
    this.#unread.push(bytes);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  get received(): number {
    return this.chunks.reduce((n, c) => n + c.byteLength, 0);
  }

  /** Resolves at the next output chunk. */
  next(): Promise<void> {
    return new Promise((resolve) => this.#listeners.push(resolve));
  }
}

interface Plan {
  /** Total fuel points at which to suspend (ascending). */
  fuel: number[];
  /** Before sending message i, suspend the program (blocked waiting for input) when blocked[i]. */
  blocked: boolean[];
}

interface Outcome {
  status: Status;
  output: string;
  memory: string;
  /** Fuel used in all (for choosing suspension points). */
  fuel: number;
  snapshots: number;
}

/** Talk to the program message by message (each awaits its full reply), migrating per the plan. */
async function converse(file: string, fn: string, messages: string[], reply: (m: string) => string, plan: Plan): Promise<Outcome> {
  const l = await launch(file, { function: fn });
  let program: ProgramInstance = l.program;
  let done: Promise<Status> = l.done;
  let conn = new Connection();
  let connected = program.connect(conn.readable, conn.writable);
  const output: Uint8Array[] = [];
  let snapshots = 0;
  const points = [...plan.fuel];
  let armed = points.shift();
  if (armed !== undefined) program.instance.suspendAfterFuel(armed);

  // Move the program to a new host; the new client takes over the connection.
  const migrate = async (atFuelPoint: boolean): Promise<void> => {
    const snapshot = await snapshotInstance(program);
    snapshots++;
    // The suspension hands the client what the program wrote; wait for that.
    await connected;
    output.push(...conn.chunks);
    program = await restoreInstance(snapshot, {
      cache: new ModuleCache(null),
      engine: nodeEngine(),
      registry: new Registry(),
      context: { instance: crypto.randomUUID(), scope: [] },
    });
    if (atFuelPoint) armed = points.shift();
    if (armed !== undefined) program.instance.suspendAfterFuel(armed);
    done = program.run();
    conn = new Connection(conn);
    connected = program.connect(conn.readable, conn.writable);
  };

  // Wait for the reply to reach `target` bytes in all, migrating whenever the program suspends.
  const settled = (p: Promise<Status>) => p.then((s) => ({ status: s }));
  const expect = async (target: number): Promise<void> => {
    for (;;) {
      const got = output.reduce((n, c) => n + c.byteLength, 0) + conn.received;
      if (got >= target) return;
      const event = await Promise.race([conn.next().then(() => null), settled(done)]);
      if (event === null) continue;
      assert.equal(event.status.state, 'SUSPENDED', `program stopped early: ${JSON.stringify(event.status)}`);
      await migrate(true);
    }
  };

  let sent = 0;
  for (let i = 0; i < messages.length; i++) {
    if (plan.blocked[i]) {
      program.suspend();
      const status = await done;
      assert.equal(status.state, 'SUSPENDED');
      await migrate(false);
    }
    conn.write(new TextEncoder().encode(messages[i]));
    sent += reply(messages[i]).length;
    await expect(sent);
  }
  conn.end();
  let status = await done;
  while (status.state === 'SUSPENDED') {
    // A fuel point fell in the program's final stretch: finish on a new host.
    await migrate(true);
    status = await done;
  }
  await connected;
  output.push(...conn.chunks);
  return {
    status,
    output: Buffer.concat(output).toString(),
    memory: createHash('sha256').update(program.instance.capture().memory).digest('hex'),
    fuel: program.instance.fuelConsumed,
    snapshots,
  };
}

function messagesFor(seed: number, count: number): string[] {
  const next = random(seed);
  const words = ['gate', 'snapshot', 'migrate', 'resume', 'wasm', 'stream', 'packet', 'fuel'];
  return Array.from({ length: count }, () => {
    const n = 1 + Math.floor(next() * 6);
    return Array.from({ length: n }, () => words[Math.floor(next() * words.length)]).join(' ') + '\n';
  });
}

async function checkConversation(file: string, fn: string, reply: (m: string) => string): Promise<void> {
  const messages = messagesFor(SEED ^ file.length, 24);
  const expected = messages.map(reply).join('');
  const plain = await converse(file, fn, messages, reply, { fuel: [], blocked: [] });
  assert.deepEqual(plain.status, { state: 'HALTED', cause: 'NORMAL', result: 0 });
  assert.equal(plain.output, expected);

  const next = random(SEED ^ fn.length);
  const fuel = Array.from({ length: 12 }, () => Math.floor(next() * plain.fuel)).sort((a, b) => a - b);
  const blocked = messages.map(() => next() < 0.3);
  const moved = await converse(file, fn, messages, reply, { fuel, blocked });
  assert.deepEqual(moved.status, plain.status);
  assert.equal(moved.output, expected, 'client output');
  assert.equal(moved.memory, plain.memory, 'final memory');
  // Fuel is not compared: how many gate_io calls a conversation takes
  // depends on how packets happen to be batched, migration or not.
  const planned = blocked.filter(Boolean).length;
  assert.ok(moved.snapshots >= planned + fuel.length - 2, `only ${moved.snapshots} migrations (${planned} while blocked)`);
}

describe(`conversation across snapshots (seed ${SEED})`, () => {
  it('echo, suspended mid-stream and while blocked', () =>
    checkConversation('examples/echo.wasm', 'echo', (m) => m));
  it('a program waiting in blocking I/O', () =>
    checkConversation('examples/wait.wasm', 'wait', (m) => m.toUpperCase()));
});
