// An instance living in a worker process, seen from the server. Its status
// is kept in step with the worker through the ordered messages of the
// worker's channel: RUNNING from run() until the worker reports the stop.

import { Cause, State, type Status } from '../../../runtime/instance/status.ts';
import { ExecError, type ExecInstance, type HibernationReport, type Inspection, type LostAs } from '../executor.ts';
import { ClientBridge } from './bridge-client.ts';
import type { WorkerProcess } from './process.ts';
import type { ErrorInfo, InspectReply } from './protocol.ts';

const RUNNING: Status = { state: State.RUNNING, cause: Cause.NORMAL, result: 0 };

export class RemoteInstance implements ExecInstance {
  readonly id: number;
  readonly worker: WorkerProcess;
  readonly memoryLimit: number;
  /** Instance UUID (for reports). */
  readonly name: string;
  private current: Status;
  private running = false;
  private settle: { resolve: (s: Status) => void; reject: (e: Error) => void } | undefined;
  private released = false;
  private lostError: ExecError | undefined;
  /** Set when the worker was lost under it (see ExecInstance.lost). */
  lostAs: LostAs | undefined;
  private readonly bridges = new Set<ClientBridge>();
  private readonly debug: ((chunk: Uint8Array) => void) | undefined;
  private readonly onForget: () => void;
  private readonly onLost: (() => void) | undefined;
  private readonly onHibernated: ((h: HibernationReport) => void) | undefined;
  private readonly onWoken: (() => void) | undefined;
  /** Its run waits in storage (reported by the worker). */
  hibernating: boolean;

  constructor(options: {
    id: number;
    worker: WorkerProcess;
    name: string;
    status: Status;
    memoryLimit: number;
    debug?: (chunk: Uint8Array) => void;
    /** Called once the instance is released and no run is in progress. */
    onForget: () => void;
    onLost?: () => void;
    onHibernated?: (h: HibernationReport) => void;
    onWoken?: () => void;
    /** Created dormant (see CreateOptions.dormant). */
    hibernating?: boolean;
  }) {
    this.id = options.id;
    this.worker = options.worker;
    this.name = options.name;
    this.current = options.status;
    this.memoryLimit = options.memoryLimit;
    this.debug = options.debug;
    this.onForget = options.onForget;
    this.onLost = options.onLost;
    this.onHibernated = options.onHibernated;
    this.onWoken = options.onWoken;
    this.hibernating = options.hibernating ?? false;
  }

  get status(): Status {
    return this.running ? RUNNING : this.current;
  }

  run(fn?: string): Promise<Status> {
    if (this.lostError) return Promise.reject(this.lostError);
    if (this.released) return Promise.reject(new ExecError('state', 'instance was released'));
    if (this.running) return Promise.reject(new ExecError('state', 'instance is running'));
    const { state } = this.current;
    if (state === State.TERMINATED || state === State.KILLED) {
      return Promise.reject(new ExecError('state', `instance is ${state.toLowerCase()}`));
    }
    // Other checks (entry function, halted without one) are the worker's.
    this.running = true;
    this.worker.post({ op: 'run', id: this.id, function: fn || undefined });
    return new Promise<Status>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: () => void,
  ): Promise<boolean> {
    if (input?.locked || output?.locked) {
      return Promise.reject(new TypeError('origin connect: client stream is locked'));
    }
    if (this.lostError || this.released || signal?.aborted) return Promise.resolve(false);
    const port = this.worker.ports.open();
    const bridge = new ClientBridge(port, { input, output, signal, onJoin });
    this.bridges.add(bridge);
    bridge.done.finally(() => this.bridges.delete(bridge));
    this.worker.post({ op: 'connect', id: this.id, port: port.id, input: input !== null, output: output !== null });
    return bridge.done;
  }

  suspend(): void {
    if (this.running) this.worker.post({ op: 'suspend', id: this.id });
  }

  kill(): void {
    if (this.lostError || this.released) return;
    if (!this.running && (this.current.state === State.SUSPENDED || this.current.state === State.HALTED)) {
      // As in process: a stopped instance becomes KILLED at once.
      this.current = { state: State.KILLED, cause: Cause.NORMAL, result: 0 };
    }
    this.worker.post({ op: 'kill', id: this.id });
  }

  snapshot(): Promise<Uint8Array> {
    const refused = this.refusal('instance must not be running');
    if (refused) return Promise.reject(refused);
    return this.worker.request<Uint8Array>((req) => ({ op: 'snapshot', req, id: this.id }));
  }

  async inspect(): Promise<Inspection> {
    const refused = this.refusal('instance must be stopped');
    if (refused) throw refused;
    const reply = await this.worker.request<InspectReply>((req) => ({ op: 'inspect', req, id: this.id }));
    return { memory: reply.memory, globals: reply.globals };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (!this.lostError) this.worker.post({ op: 'release', id: this.id });
    // A run in progress still reports its end (release kills it), and the instance counts until then.
    if (!this.running) this.onForget();
  }

  private refusal(whenRunning: string): ExecError | undefined {
    if (this.lostError) return this.lostError;
    if (this.released) return new ExecError('state', 'instance was released');
    if (this.running) return new ExecError('state', whenRunning);
    return undefined;
  }

  // Events from the worker.

  stopped(status: Status): void {
    if (!this.running) return;
    this.running = false;
    this.current = status;
    const s = this.settle;
    this.settle = undefined;
    if (this.released) this.onForget();
    s?.resolve(status);
  }

  runFailed(error: ErrorInfo): void {
    if (!this.running) return;
    this.running = false;
    const s = this.settle;
    this.settle = undefined;
    if (this.released) this.onForget();
    s?.reject(new ExecError(error.kind, error.message));
  }

  hibernated(h: HibernationReport): void {
    this.hibernating = h.waiting;
    try {
      this.onHibernated?.(h);
    } catch {
      // The owner's bookkeeping failing does not concern the worker.
    }
  }

  woke(): void {
    this.hibernating = false;
    try {
      this.onWoken?.();
    } catch {
      // as above
    }
  }

  debugOutput(chunk: Uint8Array): void {
    try {
      this.debug?.(chunk);
    } catch {
      // A failing debug sink does not concern the program.
    }
  }

  /**
   * The worker is gone (stuck or crashed). A bystander ends as KILLED with
   * cause INTERNAL (its state can be restored from elsewhere); the instance
   * whose slice held the worker ends KILLED, its error naming the limit.
   */
  lost(error: ExecError, as: LostAs = 'bystander', offence?: string): void {
    if (this.lostError) return;
    this.lostError = error;
    this.lostAs = as;
    this.current =
      as === 'offender' && offence
        ? { state: State.KILLED, cause: Cause.NORMAL, result: 0, error: offence }
        : { state: State.KILLED, cause: Cause.INTERNAL, result: 0, error: error.message };
    try {
      this.onLost?.();
    } catch {
      // The owner's bookkeeping must not keep the instance from ending.
    }
    for (const b of this.bridges) b.lost(error);
    if (this.running) {
      this.running = false;
      const s = this.settle;
      this.settle = undefined;
      s?.resolve(this.current);
    }
  }
}
