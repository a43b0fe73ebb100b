// External services over gRPC (services.md §5): connect to a process that
// implements gate.grpc.Root and gate.grpc.Instance, ask it which services it
// offers, and register one factory per service. Each program run gets one
// remote instance per service, driven through Create, Receive, Handle and
// Suspend + Snapshot (or Shutdown).
//
// Differences from Gate, deliberate: packets the program sends are relayed
// asynchronously but strictly in order (the instance's I/O never waits for a
// round trip); items the service sends that are shorter than a header,
// longer than the packet limit, or in an unknown domain end the run instead
// of crashing the server; end-of-run RPCs get a live deadline.

import * as grpc from '@grpc/grpc-js';
import { Domain, HEADER_SIZE, packetDomain } from '../../../runtime/packet/packet.ts';
import type { AbortRun, SendPacket, ServiceConfig, ServiceContext, ServiceFactory, ServiceInstance } from '../../../runtime/service/service.ts';
import type { Availability } from '../../registry.ts';
import {
  methods,
  type BytesValue,
  type CreateRequest,
  type CreateResponse,
  type Empty,
  type HandleRequest,
  type IdRequest,
  type InitResponse,
  type SnapshotRequest,
} from './proto.ts';

export interface ExternalServicesOptions {
  /** gRPC target: `unix:/path`, `host:port`, `dns:…`. */
  target: string;
  /** Plaintext (Gate's `insecure`); otherwise TLS with the system roots or `rootCerts`. */
  insecure?: boolean;
  rootCerts?: Buffer;
  /** Milliseconds for Init and for each end-of-run RPC (default 10000). */
  timeout?: number;
}

/** A service offered by an external process, ready to register. */
export interface ExternalService {
  readonly factory: ServiceFactory;
  /** Present when the service requires a principal. */
  readonly available?: Availability;
}

export interface ExternalConnection {
  readonly services: readonly ExternalService[];
  close(): void;
}

/** A failure of the external service connection or protocol. */
export class ExternalServiceError extends Error {
  readonly code = 'ERR_EXTERNAL_SERVICE';
  constructor(message: string) {
    super(message);
    this.name = 'ExternalServiceError';
  }
}

const root = methods('Root');
const inst = methods('Instance');

type Unary<Req, Res> = (req: Req, deadline?: number) => Promise<Res>;

function unary<Req, Res>(client: grpc.Client, def: grpc.MethodDefinition<Req, Res>): Unary<Req, Res> {
  return (req, deadline) =>
    new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        req,
        new grpc.Metadata(),
        deadline !== undefined ? { deadline: Date.now() + deadline } : {},
        (err, res) => (err ? reject(err) : resolve(res as Res)),
      );
    });
}

interface Rpc {
  create: Unary<CreateRequest, CreateResponse>;
  handle: Unary<HandleRequest, Empty>;
  suspend: Unary<IdRequest, Empty>;
  snapshot: Unary<SnapshotRequest, BytesValue>;
  shutdown: Unary<IdRequest, Empty>;
  receive(id: Uint8Array): grpc.ClientReadableStream<BytesValue>;
  timeout: number;
}

/** Connect, call Init, and describe the offered services. */
export async function connectExternalServices(options: ExternalServicesOptions): Promise<ExternalConnection> {
  const credentials = options.insecure
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(options.rootCerts ?? null);
  const client = new grpc.Client(options.target, credentials);
  const timeout = options.timeout ?? 10_000;
  const d = (name: string) => inst[name] as grpc.MethodDefinition<unknown, unknown>;
  const rpc: Rpc = {
    create: unary(client, d('Create')) as Unary<CreateRequest, CreateResponse>,
    handle: unary(client, d('Handle')) as Unary<HandleRequest, Empty>,
    suspend: unary(client, d('Suspend')) as Unary<IdRequest, Empty>,
    snapshot: unary(client, d('Snapshot')) as Unary<SnapshotRequest, BytesValue>,
    shutdown: unary(client, d('Shutdown')) as Unary<IdRequest, Empty>,
    receive: (id) => {
      const def = d('Receive');
      return client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, { id }) as grpc.ClientReadableStream<BytesValue>;
    },
    timeout,
  };
  let init: InitResponse;
  try {
    init = await (unary(client, root.Init as grpc.MethodDefinition<unknown, unknown>) as Unary<Empty, InitResponse>)({}, timeout);
  } catch (e) {
    client.close();
    throw new ExternalServiceError(`external services at ${options.target}: Init failed: ${(e as Error).message}`);
  }
  const services = init.services.map((s): ExternalService => {
    const factory: ServiceFactory = {
      name: s.name,
      revision: s.revision,
      streams: true,
      create: (context, config, saved) => new RemoteInstance(rpc, s.name, context, config, saved),
    };
    return s.require_principal
      ? { factory, available: (ctx) => ctx.principal !== undefined && ctx.principal !== '' }
      : { factory };
  });
  return { services, close: () => client.close() };
}

// One key per program instance, so a service can tell which of its
// instances belong together (Gate: per process; here per instance context).
const processKeys = new WeakMap<ServiceContext, Uint8Array>();

function processKey(context: ServiceContext): Uint8Array {
  let key = processKeys.get(context);
  if (!key) {
    key = crypto.getRandomValues(new Uint8Array(16));
    processKeys.set(context, key);
  }
  return key;
}

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  const out = new Uint8Array(16);
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return out;
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

class RemoteInstance implements ServiceInstance {
  readonly #rpc: Rpc;
  readonly #config: ServiceConfig;
  /** Resolves to the remote id once Create succeeded. */
  readonly #created: Promise<Uint8Array>;
  /** The chain of Handle calls: packets reach the service in order. */
  #chain: Promise<unknown>;
  #send: SendPacket | null = null;
  #abort: AbortRun | null = null;
  #stream: grpc.ClientReadableStream<BytesValue> | null = null;
  #streamEnded: Promise<void> | null = null;
  /** Set at the end of the run: no more delivery to the program. */
  #stopping = false;
  /** Program packets not handed to the service (end of run came first). */
  readonly #incoming: Uint8Array[] = [];
  /** Service packets not delivered to the program. */
  readonly #outgoing: Uint8Array[] = [];
  #saved: Uint8Array | null = null;
  #finished = false;

  constructor(rpc: Rpc, name: string, context: ServiceContext, config: ServiceConfig, saved: Uint8Array | null) {
    this.#rpc = rpc;
    this.#config = config;
    this.#created = rpc
      .create({
        service_name: name,
        config: {
          max_send_size: config.maxSendSize,
          process_key: processKey(context),
          principal_id: context.principal ?? '',
          instance_uuid: uuidBytes(context.instance),
        },
        snapshot: saved ?? new Uint8Array(0),
      })
      .then((res) => {
        if (res.restoration_error !== '') {
          throw new ExternalServiceError(`service ${name}: restoration failed: ${res.restoration_error}`);
        }
        return new Uint8Array(res.id);
      });
    this.#chain = this.#created;
    // Failures surface through abort once the instance has started.
    this.#created.catch(() => {});
  }

  start(send: SendPacket, abort: AbortRun): void {
    this.#send = send;
    this.#abort = abort;
    this.#created.then(
      (id) => this.#receive(id),
      (e: unknown) => this.#fail(e),
    );
  }

  #fail(e: unknown): void {
    if (this.#stopping) return;
    this.#abort?.(e instanceof Error ? e : new ExternalServiceError(String(e)));
  }

  #receive(id: Uint8Array): void {
    if (this.#stopping) return;
    const stream = this.#rpc.receive(id);
    this.#stream = stream;
    this.#streamEnded = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('error', (e: grpc.ServiceError) => {
        resolve();
        if (e.code !== grpc.status.CANCELLED) this.#fail(new ExternalServiceError(`receive stream failed: ${e.message}`));
      });
    });
    stream.on('data', (item: BytesValue) => this.#item(new Uint8Array(item.value)));
  }

  // One packet from the service: validated, then delivered (or kept when the run is ending).
  #item(p: Uint8Array): void {
    if (p.length < HEADER_SIZE || p.length > this.#config.maxSendSize) {
      this.#fail(new ExternalServiceError(`service sent a packet of invalid size ${p.length}`));
      return;
    }
    if (packetDomain(p) > Domain.DATA) {
      this.#fail(new ExternalServiceError(`service sent a packet in invalid domain ${p[6]}`));
      return;
    }
    const copy = p.slice();
    new DataView(copy.buffer).setUint32(0, copy.length, true);
    if (this.#stopping) this.#outgoing.push(copy);
    else this.#send?.(copy);
  }

  handle(packet: Uint8Array): void {
    const data = packet.slice();
    this.#chain = this.#chain.then(async (id) => {
      if (this.#stopping) {
        this.#incoming.push(data);
        return id;
      }
      try {
        await this.#rpc.handle({ id: id as Uint8Array, data });
      } catch (e) {
        if (this.#stopping) this.#incoming.push(data);
        else this.#fail(new ExternalServiceError(`Handle failed: ${(e as Error).message}`));
      }
      return id;
    });
  }

  /**
   * End of run: with suspend, stop the remote instance (Suspend), collect
   * what it still sends, and ask for its Snapshot (kept for shutdown());
   * otherwise Shutdown.
   */
  async prepareShutdown(suspend: boolean): Promise<void> {
    if (this.#finished) return;
    this.#stopping = true;
    let id: Uint8Array;
    try {
      id = (await this.#chain) as Uint8Array;
    } catch {
      this.#finished = true;
      return; // never created: nothing to end
    }
    this.#finished = true;
    const deadline = this.#rpc.timeout;
    if (!suspend) {
      this.#stream?.cancel();
      await this.#rpc.shutdown({ id }, deadline).catch(() => {});
      return;
    }
    await this.#rpc.suspend({ id }, deadline);
    await this.#streamEnded;
    const res = await this.#rpc.snapshot({ id, outgoing: concat(this.#outgoing), incoming: concat(this.#incoming) }, deadline);
    this.#saved = new Uint8Array(res.value);
  }

  shutdown(): Uint8Array {
    this.#stopping = true;
    if (this.#saved !== null) return this.#saved;
    if (!this.#finished) {
      // Without prepareShutdown the remote state cannot be collected
      // synchronously: end the remote instance and save nothing.
      void this.prepareShutdown(false);
    }
    return new Uint8Array(0);
  }
}
