// A worker process of the WorkerExecutor. Two roles (set by its first message):
//
// - instances: hosts many program instances on this process's engine (green
//   threads, see src/runtime/instance/engine.ts) and answers heartbeats. It
//   never instruments modules itself: prepared programs arrive from the
//   server and are only compiled here, so nothing blocks the event loop for
//   long. It reports the instance whose slice it begins, so that a worker
//   that stops answering blames the right one.
// - prepare: validates and rewrites modules (docs/engine.md) through the
//   on-disk ModuleCache, and sends back the prepared program. The server
//   kills it past a deadline or a memory cap.
//
// A worker ends when its server does: a guard thread kills the process when
// its parent is gone, even if the main thread is stuck in a program.

import { ModuleCache, sha256Hex } from '../../../host/module-cache.ts';
import type { HostedProgram } from '../../../host/hosted-program.ts';
import { isSnapshot } from '../../../host/snapshot.ts';
import { DEFAULT_MEMORIES, type Runnable } from '../../../runtime/instance/engine.ts';
import type { ProgramInfo } from '../../../runtime/prepare/prepared.ts';
import type { CompiledModule } from '../../../runtime/instance/instance.ts';
import { instanceMemoryBytes } from '../../../runtime/prepare/prepared.ts';
import { State } from '../../../runtime/instance/status.ts';
import { readSnapshot } from '../../../runtime/snapshot/read.ts';
import { Registry } from '../../../services/index.ts';
import { classify, ExecError } from '../executor.ts';
import { Hosting } from '../hosting.ts';
import { ProgramBridge } from './bridge-program.ts';
import { blockForever, ChannelRelay, startGuard } from './child.ts';
import { PortHub } from './ports.ts';
import { type CreateReply, type CreateRequest, type ErrorInfo, type FromWorker, type InspectReply, type PrepareReply, type ToWorker, type WorkerSetup } from './protocol.ts';

function post(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

const slice = startGuard();

function errorInfo(error: unknown): ErrorInfo {
  const e = classify(error);
  return { kind: e.kind, message: e.message };
}

function answer(req: number, work: () => Promise<unknown> | unknown): void {
  Promise.resolve()
    .then(work)
    .then(
      (value) => post({ ev: 'reply', req, value }),
      (error: unknown) => post({ ev: 'fail', req, error: errorInfo(error) }),
    );
}

/** Key of a prepared program: the same for every snapshot of it. */
function shareKey(program: Uint8Array, maxMemoryPages: number): string {
  return `${sha256Hex(program)}:${maxMemoryPages}`;
}

let setup: WorkerSetup;
const ports = new PortHub((envelope) => post({ ev: 'port', ...envelope }));

// --- prepare role ---

let cache: ModuleCache;

async function prepare(bytes: Uint8Array, maxMemoryPages: number): Promise<PrepareReply> {
  const snapshot = isSnapshot(bytes);
  const program = snapshot ? (await readSnapshot(bytes)).program : bytes;
  const compiled = await cache.get(program, { maxMemoryPages });
  const key = shareKey(compiled.program, maxMemoryPages);
  const facts = { snapshot, entries: compiled.prepared.info.entries };
  return { key, share: { key, program: compiled.program, prepared: compiled.prepared, maxMemoryPages }, facts };
}

// --- instances role ---

/**
 * Instance ids by their runnable, to report whose slice begins: the server
 * blames the instance whose slice it was told of last. Reported when the
 * instance changes, and when the engine idles (few records even for a busy
 * loop).
 */
const slices = new WeakMap<Runnable, number>();
let hosting: Hosting;
let registry: Promise<Registry>;
const compiledByKey = new Map<string, Promise<CompiledModule>>();
const hosted = new Map<number, Promise<HostedProgram>>();

function startHosting(): void {
  hosting = new Hosting({
    memories: setup.memories?.capacity ?? DEFAULT_MEMORIES,
    memoriesKey: setup.memories?.key ?? 'live instances per worker process',
    memoryWait: setup.memories?.wait,
    hibernation: setup.hibernation,
    onSlice: (r) => slice.onSlice(r === undefined, r === undefined ? undefined : slices.get(r)),
  });
}

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

/** Compile a prepared program (off this event loop: V8 compiles in the background) and offer it to the cache. */
function receiveShare(share: NonNullable<CreateRequest['share']>): void {
  const compiling = WebAssembly.compile(share.prepared.bytes as Uint8Array<ArrayBuffer>).then((module) => {
    const c: CompiledModule = { prepared: share.prepared, module, program: share.program };
    cache.seed(c, { maxMemoryPages: share.maxMemoryPages });
    return c;
  });
  compiling.catch(() => compiledByKey.delete(share.key));
  compiledByKey.set(share.key, compiling);
}

/** The server let a program go (no instance here uses it): its instances already hold their module. */
function forgetShare(key: string): void {
  const compiling = compiledByKey.get(key);
  compiledByKey.delete(key);
  compiling?.then((c) => cache.drop(c.program, { maxMemoryPages: Number(key.slice(key.lastIndexOf(':') + 1)) })).catch(() => {});
}

async function create(m: CreateRequest): Promise<{ program: HostedProgram; info: ProgramInfo }> {
  if (m.share) receiveShare(m.share);
  let key = m.key;
  if (m.snapshot && key === null) {
    // Never prepare here (it would hold up this worker's instances): name the program instead.
    key = shareKey((await readSnapshot(m.snapshot)).program, m.maxMemoryPages);
    if (!compiledByKey.has(key)) throw new NeedProgram(key);
  }
  const compiling = key === null ? undefined : compiledByKey.get(key);
  if (!compiling) throw new ExecError('internal', `program ${key} was not shared with this worker`);
  const compiled = await compiling;
  const id = m.id;
  const program = await hosting.host({
    common: {
      registry: await registry,
      context: m.context,
      function: m.function,
      timeLimit: m.timeLimit,
      timeResolution: m.timeResolution,
      debug: m.debug ? (chunk: Uint8Array) => post({ ev: 'debug', id, chunk }) : undefined,
    },
    compiled,
    snapshot: m.snapshot,
    dormant: m.dormant,
    hibernate: m.hibernate,
    cache,
    maxMemoryPages: m.maxMemoryPages,
    events: {
      onHibernated: (h) => post({ ev: 'hibernated', id, checkpoint: h.name, size: h.size, idle: h.idle, wakeAt: h.wakeAt, waiting: h.waiting }),
      onWoken: () => post({ ev: 'woke', id }),
      onResident: (p) => slices.set(p.instance, id),
    },
    working: (work) => slice.working(id, work),
  });
  return { program, info: compiled.prepared.info };
}

/** The server is closing: the hibernated instances stay so (their checkpoints hold them); their ids. */
async function freeze(): Promise<number[]> {
  hosting.hibernator.stop();
  const frozen: number[] = [];
  for (const [id, p] of hosted) {
    const program = await p.catch(() => undefined);
    if (program?.freeze()) frozen.push(id);
  }
  return frozen;
}

function forget(id: number): void {
  const p = hosted.get(id);
  hosted.delete(id);
  p?.then((program) => program.dispose()).catch(() => {});
}

/** Apply work to an instance after the messages before it (its create first). */
function withInstance<T>(id: number, work: (p: HostedProgram) => T | Promise<T>): Promise<T> {
  const p = hosted.get(id);
  if (!p) return Promise.reject(new ExecError('state', `no instance ${id} in this worker`));
  return p.then(work);
}

function stopped(program: HostedProgram): void {
  if (program.status.state === State.RUNNING) throw new ExecError('state', 'instance must not be running');
}

function connect(m: Extract<ToWorker, { op: 'connect' }>): void {
  const bridge = new ProgramBridge(ports.open(m.port), m.input, m.output);
  withInstance(m.id, (program) => program.connect(bridge.input, bridge.output, bridge.signal, () => bridge.joined())).then(
    (joined) => bridge.done(joined),
    () => bridge.done(false),
  );
}

let relay: ChannelRelay | undefined;

function start(m: WorkerSetup): void {
  setup = m;
  relay = new ChannelRelay(setup.relayChannels ?? [], (channel, data) => post({ ev: 'broadcast', channel, data }));
  cache = new ModuleCache(setup.role === 'prepare' ? setup.cacheDir : null, setup.cacheBytes);
  if (setup.role === 'instances') {
    startHosting();
    registry = loadRegistry();
    registry.catch(() => {}); // reported by each create
  }
  post({ ev: 'ready' });
}

function handle(m: ToWorker): void {
  switch (m.op) {
    case 'setup':
      start(m.setup);
      return;
    case 'port':
      ports.deliver(m);
      return;
    case 'ping':
      post({ ev: 'pong', seq: m.seq });
      return;
    case 'prepare':
      answer(m.req, () => prepare(m.bytes, m.maxMemoryPages));
      return;
    case 'create': {
      const made = create(m);
      const p = made.then((c) => c.program);
      hosted.set(m.id, p);
      p.catch(() => hosted.delete(m.id));
      answer(m.req, async (): Promise<CreateReply> => {
        try {
          const { program, info } = await made;
          return { status: program.status, memoryLimit: instanceMemoryBytes(info, m.maxMemoryPages), tableBytes: info.tableBytes };
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
    case 'release':
      forget(m.id);
      return;
    case 'forget':
      forgetShare(m.key);
      return;
    case 'broadcast':
      relay?.deliver(m.channel, m.data);
      return;
    case 'snapshot':
      answer(
        m.req,
        () =>
          withInstance(m.id, (program) => {
            stopped(program);
            return slice.working(m.id, () => program.snapshot());
          }),
      );
      return;
    case 'inspect':
      answer(
        m.req,
        () =>
          withInstance(m.id, (program): Promise<InspectReply> => {
            stopped(program);
            return slice.working(m.id, async () => {
              const state = await program.capture();
              return { memory: state.memory, globals: [...state.globals.entries()].sort((a, b) => a[0] - b[0]) };
            });
          }),
      );
      return;
    case 'connect':
      connect(m);
      return;
    case 'freeze':
      answer(m.req, () => freeze());
      return;
    case 'block':
      // Test hook (WorkerExecutorOptions.testHooks): stop answering for good,
      // as a program V8 cannot interrupt would, in instance m.id's slice.
      if (!setup.testHooks) return;
      if (m.id !== undefined) slice.report(m.id);
      blockForever(m.how);
  }
}

process.on('message', (m: ToWorker) => handle(m));
