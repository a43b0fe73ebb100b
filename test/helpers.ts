// Test helpers: run guest programs through the host layer and collect what
// they produce.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeEngine } from '../src/host/engine.ts';
import { ModuleCache } from '../src/host/module-cache.ts';
import { ProgramInstance } from '../src/host/program-instance.ts';
import type { Engine } from '../src/runtime/instance/engine.ts';
import type { Status } from '../src/runtime/instance/status.ts';
import { Registry } from '../src/services/index.ts';
import type { PrepareOptions } from '../src/runtime/prepare/prepare.ts';
import { Random } from '../tools/fuzz/random.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function guest(file: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(root, 'guest', file)));
}

// One cache per test process: preparation is the slow part.
const cache = new ModuleCache(null);
let engine: Engine | undefined;

export function testEngine(): Engine {
  engine ??= nodeEngine();
  return engine;
}

export interface LaunchOptions extends PrepareOptions {
  function?: string;
  registry?: Registry;
  fuelLimit?: number;
  timeLimit?: number;
  timeResolution?: number;
}

export interface Launched {
  program: ProgramInstance;
  /** Debug log so far, as text. */
  log(): string;
  done: Promise<Status>;
}

export async function launch(file: string, options: LaunchOptions = {}): Promise<Launched> {
  const compiled = await cache.get(guest(file), { maxMemoryPages: options.maxMemoryPages, abi: options.abi });
  const chunks: Uint8Array[] = [];
  const program = new ProgramInstance({
    engine: testEngine(),
    compiled,
    registry: options.registry ?? new Registry(),
    context: { instance: crypto.randomUUID(), scope: [] },
    function: options.function,
    debug: (c) => chunks.push(c),
    fuelLimit: options.fuelLimit,
    timeLimit: options.timeLimit,
    timeResolution: options.timeResolution,
  });
  const done = program.run();
  return { program, done, log: () => Buffer.concat(chunks).toString() };
}

/** A client: feeds `input` (or nothing) and collects the output. */
export function client(input?: string | Uint8Array) {
  const chunks: Uint8Array[] = [];
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const readable =
    bytes === undefined
      ? null
      : new ReadableStream<Uint8Array>({
          start(c) {
            // Split into modest chunks so flow control is exercised.
            for (let i = 0; i < bytes.byteLength; i += 16384) c.enqueue(bytes.slice(i, i + 16384));
            c.close();
          },
        });
  const writable = new WritableStream<Uint8Array>({
    write(c) {
      chunks.push(c.slice());
    },
  });
  return {
    readable,
    writable,
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString(),
  };
}

/** Run a program to its end with one client; returns status, client output and debug log. */
export async function runProgram(file: string, options: LaunchOptions & { input?: string | Uint8Array; connect?: boolean } = {}) {
  const l = await launch(file, options);
  const c = client(options.input);
  const joined = options.connect === false ? Promise.resolve(false) : l.program.connect(c.readable, c.writable);
  const status = await l.done;
  await joined;
  return { status, output: c.text(), log: l.log() };
}

/** Resolve once predicate() holds, polling; fail after timeoutMs. */
export async function until(predicate: () => boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A deterministic generator of floats in [0, 1) for a seed (the fuzzer's mulberry32). */
export function random(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}
