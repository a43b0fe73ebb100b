// A worker thread of the WorkerExecutor. Two roles (workerData.role):
//
// - instances: hosts many program instances on this thread's engine (green
//   threads, see src/runtime/instance/engine.ts) and answers heartbeats. It
//   never instruments modules itself: the compiled programs arrive from the
//   preparer, so nothing here blocks the event loop for long.
// - prepare: validates and instruments modules with Binaryen (seconds for
//   big programs) through the on-disk ModuleCache, and sends back the
//   compiled WebAssembly.Module, which V8 shares between threads without
//   compiling it again.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { sharedEngine } from '../../host/engine.ts';
import { ModuleCache, sha256Hex } from '../../host/module-cache.ts';
import { ProgramInstance } from '../../host/program-instance.ts';
import { isSnapshot, restoreInstance, snapshotInstance } from '../../host/snapshot.ts';
import type { CompiledModule } from '../../runtime/instance/instance.ts';
import { State } from '../../runtime/instance/status.ts';
import { readSnapshot } from '../../runtime/snapshot/read.ts';
import { Registry } from '../../services/index.ts';
import { classify, ExecError } from '../executor.ts';
import { ProgramBridge } from './bridge-program.ts';
import {
  ownedCopy,
  type CreateReply,
  type CreateRequest,
  type ErrorInfo,
  type FromWorker,
  type InspectReply,
  type PrepareReply,
  type ToWorker,
  type WorkerSetup,
} from './protocol.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;

function post(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

function errorInfo(error: unknown): ErrorInfo {
  const e = classify(error);
  return { kind: e.kind, message: e.message };
}

function answer(req: number, work: () => Promise<unknown> | unknown, transfer?: (value: unknown) => ArrayBuffer[]): void {
  Promise.resolve()
    .then(work)
    .then(
      (value) => post({ ev: 'reply', req, value }, transfer?.(value)),
      (error: unknown) => post({ ev: 'fail', req, error: errorInfo(error) }),
    );
}

/** Key of a compiled program: the same for every snapshot of it. */
function shareKey(program: Uint8Array, maxMemoryPages: number): string {
  return `${sha256Hex(program)}:${maxMemoryPages}`;
}

// --- prepare role ---

const cache = new ModuleCache(setup.role === 'prepare' ? setup.cacheDir : null);
/** Programs already sent to the main thread. */
const sent = new Set<string>();

async function prepare(bytes: Uint8Array, maxMemoryPages: number): Promise<PrepareReply> {
  const snapshot = isSnapshot(bytes);
  const program = snapshot ? (await readSnapshot(bytes)).program : bytes;
  const compiled = await cache.get(program, { maxMemoryPages });
  const key = shareKey(compiled.program, maxMemoryPages);
  const facts = { snapshot, entries: compiled.prepared.info.entries };
  if (sent.has(key)) return { key, share: null, facts };
  sent.add(key);
  const share = { key, program: compiled.program, prepared: compiled.prepared, module: compiled.module, maxMemoryPages };
  return { key, share, facts };
}

// --- instances role ---

const engine = setup.role === 'instances' ? sharedEngine() : undefined;
const registry = setup.role === 'instances' ? loadRegistry() : undefined;
registry?.catch(() => {}); // reported by each create
const compiledByKey = new Map<string, CompiledModule>();
const hosted = new Map<number, Promise<ProgramInstance>>();

async function loadRegistry(): Promise<Registry> {
  if (!setup.servicesModule) return new Registry();
  const mod = (await import(setup.servicesModule)) as { createRegistry?: (options: unknown) => Registry | Promise<Registry> };
  if (typeof mod.createRegistry !== 'function') {
    throw new ExecError('internal', `services module ${setup.servicesModule} does not export createRegistry`);
  }
  return mod.createRegistry(setup.servicesOptions);
}

/** The program of a snapshot is not here yet: the main thread is asked for it. */
class NeedProgram extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`program ${key} is needed`);
    this.key = key;
  }
}

async function create(m: CreateRequest): Promise<ProgramInstance> {
  if (m.share) {
    const c: CompiledModule = { prepared: m.share.prepared, module: m.share.module, program: m.share.program };
    compiledByKey.set(m.share.key, c);
    cache.seed(c, { maxMemoryPages: m.share.maxMemoryPages });
  }
  let key = m.key;
  if (m.snapshot && key === null) {
    // Never prepare here (it would hold up this thread's instances): name the program instead.
    key = shareKey((await readSnapshot(m.snapshot)).program, m.maxMemoryPages);
    if (!compiledByKey.has(key)) throw new NeedProgram(key);
  }
  const compiled = key === null ? undefined : compiledByKey.get(key);
  if (!compiled) throw new ExecError('internal', `program ${key} was not shared with this worker`);
  const id = m.id;
  const common = {
    engine: engine!,
    registry: await registry!,
    context: m.context,
    function: m.function,
    timeLimit: m.timeLimit,
    timeResolution: m.timeResolution,
    debug: m.debug
      ? (chunk: Uint8Array) => {
          const copy = ownedCopy(chunk);
          post({ ev: 'debug', id, chunk: copy }, [copy.buffer]);
        }
      : undefined,
  };
  if (m.snapshot) return restoreInstance(m.snapshot, { ...common, cache, maxMemoryPages: m.maxMemoryPages });
  return new ProgramInstance({ ...common, compiled });
}

/** Apply work to an instance after the messages before it (its create first). */
function withInstance<T>(id: number, work: (p: ProgramInstance) => T | Promise<T>): Promise<T> {
  const p = hosted.get(id);
  if (!p) return Promise.reject(new ExecError('state', `no instance ${id} in this worker`));
  return p.then(work);
}

function stopped(program: ProgramInstance): void {
  if (program.status.state === State.RUNNING) throw new ExecError('state', 'instance must not be running');
}

function connect(m: Extract<ToWorker, { op: 'connect' }>): void {
  const bridge = new ProgramBridge(m.port as MessagePort, m.input, m.output);
  withInstance(m.id, (program) => program.connect(bridge.input, bridge.output, bridge.signal, () => bridge.joined())).then(
    (joined) => bridge.done(joined),
    () => bridge.done(false),
  );
}

function handle(m: ToWorker): void {
  switch (m.op) {
    case 'ping':
      post({ ev: 'pong', seq: m.seq });
      return;
    case 'prepare':
      answer(m.req, () => prepare(m.bytes, m.maxMemoryPages));
      return;
    case 'create': {
      const p = create(m);
      hosted.set(m.id, p);
      p.catch(() => hosted.delete(m.id));
      answer(m.req, async (): Promise<CreateReply> => {
        try {
          const program = await p;
          const pages = program.compiled.prepared.info.memory.maximum ?? m.maxMemoryPages;
          return { status: program.status, memoryLimit: pages * 65536 };
        } catch (error) {
          if (error instanceof NeedProgram) return { need: error.key };
          throw error;
        }
      });
      return;
    }
    case 'run':
      withInstance(m.id, (program) => {
        program.run(m.function ? { function: m.function } : {}).then(
          (status) => post({ ev: 'stopped', id: m.id, status }),
          (error: unknown) => post({ ev: 'run-error', id: m.id, error: errorInfo(error) }),
        );
      }).catch((error: unknown) => post({ ev: 'run-error', id: m.id, error: errorInfo(error) }));
      return;
    case 'suspend':
      withInstance(m.id, (program) => program.suspend()).catch(() => {});
      return;
    case 'kill':
      withInstance(m.id, (program) => program.kill()).catch(() => {});
      return;
    case 'release': {
      const p = hosted.get(m.id);
      hosted.delete(m.id);
      p?.then((program) => program.kill()).catch(() => {});
      return;
    }
    case 'snapshot':
      answer(
        m.req,
        () =>
          withInstance(m.id, (program) => {
            stopped(program);
            return snapshotInstance(program).then(ownedCopy);
          }),
        (bytes) => [(bytes as Uint8Array<ArrayBuffer>).buffer],
      );
      return;
    case 'inspect':
      answer(
        m.req,
        () =>
          withInstance(m.id, (program): InspectReply => {
            stopped(program);
            const state = program.instance.capture();
            return { memory: ownedCopy(state.memory), globals: [...state.globals.entries()].sort((a, b) => a[0] - b[0]) };
          }),
        (reply) => [(reply as InspectReply).memory.buffer as ArrayBuffer],
      );
      return;
    case 'connect':
      connect(m);
      return;
    case 'block':
      // Test hook (WorkerExecutorOptions.testHooks): stop answering anything, as a runaway program would.
      if (setup.testBlock) Atomics.wait(new Int32Array(setup.testBlock), 0, 0);
      return;
  }
}

port.on('message', (m: ToWorker) => handle(m));
post({ ev: 'ready' });
