// An example external service in TypeScript, served over gRPC with Gate's
// external service protocol (service.proto). Run it as its own process:
//
//   node src/services/node/grpc/example.ts unix:/run/gate-example.sock
//   node src/services/node/grpc/example.ts 127.0.0.1:50051
//
// or let gate-server spawn it (`service.grpc.commands`), which hands it a
// connected socket as file descriptor 3 (no argument).
//
// It offers one service, `example.net/counter` (revision 1): each call's
// reply is a u32 (little-endian) count of the calls this instance has
// answered, this one included, followed by the call's content. Info, flow
// and data packets are ignored. The count survives suspend and resume: it
// is the service's snapshot, together with undelivered replies and
// unhandled calls.

import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { methods, type BytesValue, type CreateRequest, type HandleRequest, type IdRequest, type SnapshotRequest } from './proto.ts';

export const EXAMPLE_NAME = 'example.net/counter';
export const EXAMPLE_REVISION = '1';

const HEADER = 8;

interface State {
  count: number;
  /** Replies waiting for the Receive stream. */
  queue: Buffer[];
  stream: grpc.ServerWritableStream<IdRequest, BytesValue> | null;
  suspended: boolean;
}

/** Split concatenated whole packets (each starts with its u32 size). */
function packets(b: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  for (let off = 0; off < b.length; ) {
    if (b.length - off < HEADER) return null;
    const size = b.readUInt32LE(off);
    if (size < HEADER || off + size > b.length) return null;
    out.push(b.subarray(off, off + size));
    off += size;
  }
  return out;
}

/** The gate.grpc.Root and gate.grpc.Instance handlers of the example. */
export function exampleHandlers(): { root: grpc.UntypedServiceImplementation; instance: grpc.UntypedServiceImplementation } {
  const instances = new Map<string, State>();
  let nextId = 1;
  const lookup = (id: Uint8Array): State | undefined => instances.get(Buffer.from(id).toString('hex'));

  const emit = (s: State, p: Buffer): void => {
    if (s.stream && !s.suspended) s.stream.write({ value: p });
    else s.queue.push(p);
  };

  // A call packet in, the reply packet out.
  const handle = (s: State, p: Buffer): void => {
    if ((p[6] & 0xf) !== 0) return; // only calls
    s.count++;
    const content = p.subarray(HEADER);
    const reply = Buffer.alloc(HEADER + 4 + content.length);
    reply.writeUInt32LE(reply.length, 0);
    reply.writeInt16LE(p.readInt16LE(4), 4); // the host overwrites the code anyway
    reply.writeUInt32LE(s.count, HEADER);
    content.copy(reply, HEADER + 4);
    emit(s, reply);
  };

  type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

  const root = {
    Init: ((_call, cb) => {
      cb(null, { services: [{ name: EXAMPLE_NAME, revision: EXAMPLE_REVISION, require_principal: false }] });
    }) as Unary<unknown, unknown>,
  };

  const instance = {
    Create: ((call, cb) => {
      const req = call.request;
      if (req.service_name !== EXAMPLE_NAME) {
        cb({ code: grpc.status.NOT_FOUND, details: `no service ${req.service_name}` });
        return;
      }
      const s: State = { count: 0, queue: [], stream: null, suspended: false };
      const id = Buffer.alloc(8);
      id.writeBigUInt64BE(BigInt(nextId++));
      const snap = Buffer.from(req.snapshot);
      if (snap.length > 0) {
        // u32 count, u32 outgoing length, outgoing packets, incoming packets.
        const outLen = snap.length >= 8 ? snap.readUInt32LE(4) : -1;
        const outgoing = outLen >= 0 && 8 + outLen <= snap.length ? packets(snap.subarray(8, 8 + outLen)) : null;
        const incoming = outgoing ? packets(snap.subarray(8 + outLen)) : null;
        if (!outgoing || !incoming) {
          cb(null, { id, restoration_error: 'malformed snapshot' });
          return;
        }
        s.count = snap.readUInt32LE(0);
        s.queue.push(...outgoing);
        for (const p of incoming) handle(s, p);
      }
      instances.set(id.toString('hex'), s);
      cb(null, { id, restoration_error: '' });
    }) as Unary<CreateRequest, unknown>,

    Receive: (call: grpc.ServerWritableStream<IdRequest, BytesValue>) => {
      const s = lookup(call.request.id);
      if (!s) {
        call.destroy(Object.assign(new Error('no such instance'), { code: grpc.status.NOT_FOUND }));
        return;
      }
      s.stream = call;
      for (const p of s.queue.splice(0)) call.write({ value: p });
      call.on('cancelled', () => {
        if (s.stream === call) s.stream = null;
      });
    },

    Handle: ((call, cb) => {
      const s = lookup(call.request.id);
      if (!s) {
        cb({ code: grpc.status.NOT_FOUND, details: 'no such instance' });
        return;
      }
      handle(s, Buffer.from(call.request.data));
      cb(null, {});
    }) as Unary<HandleRequest, unknown>,

    Suspend: ((call, cb) => {
      const s = lookup(call.request.id);
      if (!s || s.suspended) {
        cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not running' });
        return;
      }
      s.suspended = true;
      s.stream?.end();
      s.stream = null;
      cb(null, {});
    }) as Unary<IdRequest, unknown>,

    Snapshot: ((call, cb) => {
      const key = Buffer.from(call.request.id).toString('hex');
      const s = instances.get(key);
      if (!s) {
        cb({ code: grpc.status.NOT_FOUND, details: 'no such instance' });
        return;
      }
      instances.delete(key);
      // Replies the host did not take come first, then ours still queued.
      const outgoing = Buffer.concat([Buffer.from(call.request.outgoing), ...s.queue]);
      const head = Buffer.alloc(8);
      head.writeUInt32LE(s.count, 0);
      head.writeUInt32LE(outgoing.length, 4);
      cb(null, { value: Buffer.concat([head, outgoing, Buffer.from(call.request.incoming)]) });
    }) as Unary<SnapshotRequest, unknown>,

    Shutdown: ((call, cb) => {
      const key = Buffer.from(call.request.id).toString('hex');
      instances.get(key)?.stream?.end();
      instances.delete(key);
      cb(null, {});
    }) as Unary<IdRequest, unknown>,
  };
  return {
    root: root as unknown as grpc.UntypedServiceImplementation,
    instance: instance as unknown as grpc.UntypedServiceImplementation,
  };
}

/** A gRPC server with the example service (not yet bound). */
export function exampleServer(): grpc.Server {
  const server = new grpc.Server();
  const h = exampleHandlers();
  server.addService(methods('Root'), h.root);
  server.addService(methods('Instance'), h.instance);
  return server;
}

/** Serve the example on address (`unix:/path` or `host:port`, plaintext). Resolves to the bound port (0 for Unix sockets). */
export function serveExample(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** Serve the example on an already connected socket (fd 3 from gate-server). */
export function serveExampleOnSocket(server: grpc.Server, socket: net.Socket): void {
  server.createConnectionInjector(grpc.ServerCredentials.createInsecure()).injectConnection(socket);
}

if (import.meta.main) {
  const server = exampleServer();
  const address = process.argv[2];
  if (address) {
    const port = await serveExample(server, address);
    console.error(`example external service on ${address}${port ? ` (port ${port})` : ''}`);
  } else {
    const socket = new net.Socket({ fd: 3, readable: true, writable: true });
    socket.on('close', () => process.exit(0));
    serveExampleOnSocket(server, socket);
  }
}
