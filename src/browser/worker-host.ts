// The browser host: what runs in the Web Worker of a page (worker.ts) and
// runs its programs. Programs are prepared with the same rewrite as on a
// server (BrowserModules), run on one engine (its slices scheduled with a
// MessageChannel), get the services a server offers by default (origin,
// catalog, identity, scope, random), and their origin streams are joined to
// connections of the page over the message port. Snapshots are Gate's
// format (src/host/snapshot.ts), so they move to and from servers.

import { ProgramInstance } from '../host/program-instance.ts';
import { restoreInstance, snapshotInstance } from '../host/snapshot.ts';
import { Engine } from '../runtime/instance/engine.ts';
import { InstanceError } from '../runtime/instance/instance.ts';
import { State, type Status } from '../runtime/instance/status.ts';
import { hasSnapshotSection } from '../runtime/snapshot/write.ts';
import { buildRegistry, type Registry } from '../services/index.ts';
import { BrowserModules, sha256Hex } from './modules.ts';
import { OUTPUT_WINDOW, type Event, type InstanceInfo, type Notice, type Port, type Replies, type Request, type ToWorker } from './protocol.ts';

export interface WorkerHostOptions {
  /** Default: an engine whose slices are MessageChannel macrotasks. */
  engine?: Engine;
  /** Default: the services a server offers without configuration. */
  registry?: Registry;
}

/**
 * Where an instance's run is. A pause is a suspension the host makes for a
 * snapshot of a running instance, which then goes on: connections span it.
 */
type Phase =
  | { kind: 'stopped' }
  | { kind: 'running'; done: Promise<Status> }
  | { kind: 'pausing'; resumed: Promise<void> };

interface Hosted {
  readonly id: string;
  readonly module: string;
  readonly program: ProgramInstance;
  phase: Phase;
}

/** A page connection to a program's origin stream, spanning pauses. */
class PageConnection {
  readonly conn: number;
  /** Input from the page not yet taken by a program stream. */
  readonly input: Uint8Array[] = [];
  inputEnded = false;
  /** Output bytes sent and not yet acknowledged. */
  unacked = 0;
  readonly abort = new AbortController();
  private waiters: (() => void)[] = [];

  constructor(conn: number) {
    this.conn = conn;
  }

  /** Settles at the next change (input, its end, an acknowledgement, the page leaving, a cancel). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export class WorkerHost {
  private readonly port: Port;
  private readonly engine: Engine;
  private readonly registry: Registry;
  private readonly modules = new BrowserModules();
  private readonly instances = new Map<string, Hosted>();
  private readonly connections = new Map<number, PageConnection>();

  constructor(port: Port, options: WorkerHostOptions = {}) {
    this.port = port;
    this.engine = options.engine ?? new Engine();
    this.registry = options.registry ?? buildRegistry({});
    port.addEventListener('message', (event) => this.receive(event.data as ToWorker));
    (port as { start?: () => void }).start?.();
  }

  private receive(message: ToWorker): void {
    if ('rid' in message) {
      this.request(message).then(
        ({ value, transfer }) => this.port.postMessage({ rid: message.rid, value }, transfer),
        (error: unknown) => {
          const e = error as { message?: string; code?: string };
          this.port.postMessage({ rid: message.rid, error: { message: e?.message ?? String(error), code: e?.code } });
        },
      );
    } else {
      this.notice(message);
    }
  }

  private post(event: Event, transfer: Transferable[] = []): void {
    this.port.postMessage(event, transfer);
  }

  private async request(r: Request): Promise<{ value: Replies[Request['op']]; transfer?: Transferable[] }> {
    switch (r.op) {
      case 'launch':
        return { value: await this.launch(r) };
      case 'suspend':
        return { value: await this.stop(this.get(r.id), 'suspend') };
      case 'kill':
        return { value: await this.stop(this.get(r.id), 'kill') };
      case 'resume':
        return { value: this.resume(this.get(r.id), r.function) };
      case 'snapshot': {
        const bytes = await this.snapshot(this.get(r.id));
        return { value: bytes, transfer: [bytes.buffer] };
      }
      case 'delete':
        this.delete(this.get(r.id));
        return { value: null };
      case 'connect':
        void this.serve(this.get(r.id), this.connection(r.conn));
        return { value: null };
    }
  }

  private get(id: string): Hosted {
    const h = this.instances.get(id);
    if (!h) throw new InstanceError('ERR_INSTANCE_NOT_FOUND', 'instance not found');
    return h;
  }

  private async launch(r: Extract<Request, { op: 'launch' }>): Promise<InstanceInfo> {
    if (this.instances.has(r.id)) throw new InstanceError('ERR_INSTANCE_DUPLICATE', 'duplicate instance id');
    const common = {
      engine: this.engine,
      registry: this.registry,
      context: { instance: r.id, scope: [], ...(r.principal ? { principal: r.principal } : {}) },
      debug: (bytes: Uint8Array) => this.post({ event: 'debug', id: r.id, bytes: bytes.slice() }),
      // A conversation moved here from a server goes on with this page as its client.
      reattach: true,
    };
    const snapshot = hasSnapshotSection(r.module);
    let program: ProgramInstance;
    if (snapshot) {
      program = await restoreInstance(r.module, { ...common, cache: this.modules });
    } else {
      program = new ProgramInstance({ ...common, compiled: await this.modules.get(r.module), function: r.function || undefined });
    }
    if (this.instances.has(r.id)) throw new InstanceError('ERR_INSTANCE_DUPLICATE', 'duplicate instance id');
    const h: Hosted = { id: r.id, module: await sha256Hex(r.module), program, phase: { kind: 'stopped' } };
    this.instances.set(r.id, h);
    const state = program.status.state;
    if (r.suspend) this.post({ event: 'status', id: h.id, status: program.status });
    else if (!snapshot || state === State.SUSPENDED) this.start(h);
    else if (state === State.HALTED && r.function) this.start(h, r.function);
    else this.post({ event: 'status', id: h.id, status: program.status });
    return { id: h.id, module: h.module, status: program.status };
  }

  /** Run (or continue) the program; status events at the start and the end. */
  private start(h: Hosted, fn?: string): void {
    const done = h.program.run(fn ? { function: fn } : {});
    h.phase = { kind: 'running', done };
    this.post({ event: 'status', id: h.id, status: h.program.status });
    void done.then((status) => {
      if (h.phase.kind === 'running' && h.phase.done === done) h.phase = { kind: 'stopped' };
      if (h.phase.kind !== 'pausing' && this.instances.get(h.id) === h) this.post({ event: 'status', id: h.id, status });
    });
  }

  private async stop(h: Hosted, how: 'suspend' | 'kill'): Promise<Status> {
    if (h.phase.kind === 'pausing') await h.phase.resumed;
    if (h.phase.kind === 'running') {
      const done = h.phase.done;
      if (how === 'suspend') h.program.suspend();
      else h.program.kill();
      await done;
      return h.program.status;
    }
    if (how === 'kill') {
      h.program.kill();
      this.post({ event: 'status', id: h.id, status: h.program.status });
    }
    return h.program.status;
  }

  private resume(h: Hosted, fn?: string): Status {
    if (h.phase.kind !== 'stopped') throw new InstanceError('ERR_INSTANCE_RUNNING', 'instance must not be running');
    const { state } = h.program.status;
    if (state === State.SUSPENDED && fn) throw new InstanceError('ERR_ENTRY_SUSPENDED', 'function specified for suspended instance');
    if (state === State.HALTED && !fn) throw new InstanceError('ERR_INSTANCE_STATE', 'function must be specified when resuming halted instance');
    if (state !== State.SUSPENDED && state !== State.HALTED) throw new InstanceError('ERR_INSTANCE_STATE', 'instance must be suspended or halted');
    this.start(h, fn);
    return h.program.status;
  }

  /** A snapshot of the instance; a running one is paused for it and goes on, its connections kept. */
  private async snapshot(h: Hosted): Promise<Uint8Array> {
    if (h.phase.kind === 'pausing') await h.phase.resumed;
    if (h.phase.kind !== 'running') return snapshotInstance(h.program);
    const done = h.phase.done;
    let resumed!: () => void;
    h.phase = { kind: 'pausing', resumed: new Promise((resolve) => (resumed = resolve)) };
    h.program.suspend();
    const status = await done;
    try {
      return await snapshotInstance(h.program);
    } finally {
      h.phase = { kind: 'stopped' };
      if (status.state === State.SUSPENDED) this.start(h);
      else this.post({ event: 'status', id: h.id, status });
      resumed();
    }
  }

  private delete(h: Hosted): void {
    if (h.phase.kind !== 'stopped') throw new InstanceError('ERR_INSTANCE_RUNNING', 'instance must not be running');
    this.instances.delete(h.id);
    h.program.dispose();
    this.post({ event: 'deleted', id: h.id });
  }

  private connection(conn: number): PageConnection {
    if (this.connections.has(conn)) throw new Error(`connection ${conn} exists`);
    const c = new PageConnection(conn);
    this.connections.set(conn, c);
    return c;
  }

  private notice(n: Notice): void {
    const c = this.connections.get(n.conn);
    if (!c) return; // over already
    switch (n.op) {
      case 'input':
        c.input.push(n.bytes);
        break;
      case 'input-end':
        c.inputEnded = true;
        break;
      case 'ack':
        c.unacked -= n.bytes;
        break;
      case 'disconnect':
        c.abort.abort(new Error('the page left'));
        break;
    }
    c.wake();
  }

  /** Join the page connection to the program's origin stream, again after each pause, until it is over. */
  private async serve(h: Hosted, c: PageConnection): Promise<void> {
    let joined = false;
    try {
      for (;;) {
        const paused = h.phase.kind === 'pausing';
        if (!paused) {
          await h.program.connect(inputFrom(c), outputTo(c, (e, t) => this.post(e, t)), c.abort.signal, () => {
            if (!joined) this.post({ event: 'joined', conn: c.conn });
            joined = true;
          });
        }
        if (c.abort.signal.aborted) break;
        // The run ended: a pause goes on with a new run, anything else ends the connection.
        const phase = h.phase as Phase;
        if (phase.kind === 'pausing') await phase.resumed;
        else if (!paused) break;
        if ((h.phase as Phase).kind !== 'running') break;
      }
    } finally {
      this.connections.delete(c.conn);
      this.post({ event: 'closed', conn: c.conn, joined, unread: c.input.splice(0) });
    }
  }
}

/** The page's input as a stream that takes a chunk only when the program's stream reads. */
function inputFrom(c: PageConnection): ReadableStream<Uint8Array> {
  let cancelled = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          if (cancelled) return;
          const chunk = c.input.shift();
          if (chunk) {
            controller.enqueue(chunk);
            return;
          }
          if (c.inputEnded || c.abort.signal.aborted) {
            controller.close();
            return;
          }
          await c.changed();
        }
      },
      cancel() {
        // What was not taken stays in c.input for the next run or connection.
        cancelled = true;
        c.wake();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Program output to the page, at most OUTPUT_WINDOW bytes ahead of its acknowledgements. */
function outputTo(c: PageConnection, post: (event: Event, transfer: Transferable[]) => void): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      const bytes = chunk.slice();
      c.unacked += bytes.byteLength;
      post({ event: 'output', conn: c.conn, bytes }, [bytes.buffer]);
      while (c.unacked > OUTPUT_WINDOW && !c.abort.signal.aborted) {
        await c.changed();
      }
    },
    // One run's stream ends; the page connection goes on until serve() ends it.
    close() {},
  });
}
