// An instance together with its per-run services: each run gets a fresh
// origin connector (Gate's services are per run), and clients connect to
// whichever run is current.

import { Instance, type CompiledModule } from '../runtime/instance/instance.ts';
import type { Engine } from '../runtime/instance/engine.ts';
import type { Status } from '../runtime/instance/status.ts';
import type { ServiceContext } from '../runtime/service/service.ts';
import type { InstanceState } from '../runtime/snapshot/state.ts';
import { OriginConnector, runRegistry, type Registry } from '../services/index.ts';

/** What ProgramInstance tells about its waits (a Hibernator). */
export interface Hibernation {
  waiting(p: ProgramInstance, waiting: boolean): void;
  /** The instance is gone for good. */
  forget(p: ProgramInstance): void;
}

export interface ProgramInstanceOptions {
  engine: Engine;
  compiled: CompiledModule;
  /** Server-wide services; origin and catalog are added per run. */
  registry: Registry;
  context: ServiceContext;
  function?: string;
  debug?: (chunk: Uint8Array) => void;
  timeResolution?: number;
  fuelLimit?: number;
  timeLimit?: number;
  /** Continue a captured state (see src/host/snapshot.ts). */
  restore?: InstanceState;
  /** With restore of a hibernated run: go on waiting as if it had never stopped (InstanceOptions.continueWait). */
  continueWait?: boolean;
  /** Hibernates the instance when it waits long (or memory is short); see hibernation.ts. */
  hibernation?: Hibernation;
  /**
   * A restored origin stream whose client was cut by the suspension waits
   * for the next client to take it over (default true), so a migrated
   * conversation goes on; false drains it to EOF as Gate does.
   */
  reattach?: boolean;
}

export class ProgramInstance {
  readonly instance: Instance;
  readonly compiled: CompiledModule;
  private origin: OriginConnector | undefined;
  private readonly hibernation: Hibernation | undefined;

  constructor(options: ProgramInstanceOptions) {
    const { registry, context } = options;
    this.compiled = options.compiled;
    const hibernation = options.hibernation;
    this.hibernation = hibernation;
    this.instance = new Instance({
      restore: options.restore,
      continueWait: options.continueWait,
      onWaiting: hibernation && ((waiting) => hibernation.waiting(this, waiting)),
      engine: options.engine,
      compiled: options.compiled,
      context,
      function: options.function,
      debug: options.debug,
      timeResolution: options.timeResolution,
      fuelLimit: options.fuelLimit,
      timeLimit: options.timeLimit,
      services: () => {
        this.origin = new OriginConnector({ reattach: options.reattach ?? true });
        return runRegistry(registry, this.origin).bind(context);
      },
    });
  }

  get status(): Status {
    return this.instance.currentStatus;
  }

  /** Start or resume; resolves when the run stops. */
  async run(options: { function?: string } = {}): Promise<Status> {
    const done = this.instance.run(options);
    const origin = this.origin;
    try {
      return await done;
    } finally {
      // Clients still waiting for an accept learn that none will come.
      origin?.close();
    }
  }

  /**
   * Join a client to the program's next accepted stream. Resolves true when
   * the connection is over, false when the program never accepted one in this run.
   */
  connect(
    input: ReadableStream<Uint8Array> | null,
    output: WritableStream<Uint8Array> | null,
    signal?: AbortSignal,
    onJoin?: (id: number) => void,
  ): Promise<boolean> {
    if (!this.origin || this.origin.closed) return Promise.resolve(false);
    return this.origin.connect(input, output, signal, onJoin);
  }

  suspend(): void {
    this.instance.suspend();
  }

  kill(): void {
    this.instance.kill();
  }

  /** Kill it if it runs, and give its memory back to the engine's pool (now, or when the run has stopped). */
  dispose(): void {
    this.hibernation?.forget(this);
    this.instance.dispose();
  }
}
