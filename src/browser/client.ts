// The page's side of the browser host: a BrowserRuntime drives the worker
// that runs programs (worker.ts) and gives the page each program's origin
// stream as a Connection of Web Streams, the same shape a server connection
// has in the console.

import type { Status } from '../runtime/instance/status.ts';
import type { Event, FromWorker, InstanceInfo, Notice, Port, Replies, Request } from './protocol.ts';

export type { InstanceInfo } from './protocol.ts';

/** How a connection ended. */
export interface ConnectionEnd {
  /** Whether the program ever took the connection. */
  joined: boolean;
  /** Input written to the connection that the program never took (for the next connection). */
  unread: Uint8Array[];
}

/** A client connection to a program's origin stream, wherever the program runs. */
export interface Connection {
  /** The program's output. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Input for the program; closing it is end of input. */
  readonly writable: WritableStream<Uint8Array>;
  /** Settles true when the program takes the connection, false when it never will. */
  readonly joined: Promise<boolean>;
  /** Settles when the connection is over and its output has all been read into `readable`. */
  readonly closed: Promise<ConnectionEnd>;
  /** Leave; the program sees the client go away. */
  leave(): void;
}

export class WorkerError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'WorkerError';
    this.code = code;
  }
}

export type RuntimeEvent = Extract<Event, { event: 'status' | 'deleted' | 'debug' }>;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface OpenConnection {
  output: ReadableStreamDefaultController<Uint8Array>;
  /** Output bytes enqueued and not yet acknowledged to the worker. */
  unacked: number;
  joined(value: boolean): void;
  closed(end: ConnectionEnd): void;
}

export class BrowserRuntime {
  private readonly port: Port & { terminate?: () => void };
  private nextRid = 1;
  private nextConn = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly connections = new Map<number, OpenConnection>();
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  /** The last known status of every instance in the worker. */
  readonly statuses = new Map<string, Status>();

  /** port: the Worker running worker.js (or, in tests, a MessagePort to a WorkerHost). */
  constructor(port: Port & { terminate?: () => void }) {
    this.port = port;
    port.addEventListener('message', (event) => this.receive(event.data as FromWorker));
    (port as { start?: () => void }).start?.();
  }

  /** Status, deletion and debug-log events of the worker's instances. Returns the unsubscribe function. */
  onEvent(listener: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Prepare and run a program (or continue a snapshot) as instance `id`. */
  launch(id: string, module: Uint8Array, options: { function?: string; principal?: string; suspend?: boolean } = {}): Promise<InstanceInfo> {
    const copy = module.slice();
    return this.call({ op: 'launch', id, module: copy, ...options }, [copy.buffer]);
  }

  suspend(id: string): Promise<Status> {
    return this.call({ op: 'suspend', id });
  }

  kill(id: string): Promise<Status> {
    return this.call({ op: 'kill', id });
  }

  resume(id: string, fn?: string): Promise<Status> {
    return this.call({ op: 'resume', id, ...(fn ? { function: fn } : {}) });
  }

  /** The instance's snapshot module; a running instance is paused for it and goes on. */
  snapshot(id: string): Promise<Uint8Array> {
    return this.call({ op: 'snapshot', id });
  }

  delete(id: string): Promise<null> {
    return this.call({ op: 'delete', id });
  }

  /** Join the program's next origin connection (or take over the one a migration cut). */
  connect(id: string): Connection {
    const conn = this.nextConn++;
    const notify = (n: Notice) => this.port.postMessage(n, n.op === 'input' ? [n.bytes.buffer] : []);
    let joined!: (value: boolean) => void;
    let closed!: (end: ConnectionEnd) => void;
    const joinedP = new Promise<boolean>((resolve) => (joined = resolve));
    const closedP = new Promise<ConnectionEnd>((resolve) => (closed = resolve));
    let entry: OpenConnection | undefined;
    const readable = new ReadableStream<Uint8Array>(
      {
        start: (output) => {
          entry = { output, unacked: 0, joined, closed };
          this.connections.set(conn, entry);
        },
        pull: () => {
          // The page has read what was queued: let the worker send more.
          if (entry && entry.unacked > 0) {
            notify({ op: 'ack', conn, bytes: entry.unacked });
            entry.unacked = 0;
          }
        },
        cancel: () => notify({ op: 'disconnect', conn }),
      },
      { highWaterMark: 0 },
    );
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => notify({ op: 'input', conn, bytes: chunk.slice() }),
      close: () => notify({ op: 'input-end', conn }),
      abort: () => notify({ op: 'input-end', conn }),
    });
    this.call({ op: 'connect', id, conn }).catch(() => {
      this.connections.delete(conn);
      joined(false);
      closed({ joined: false, unread: [] });
      entry?.output.close();
    });
    return { readable, writable, joined: joinedP, closed: closedP, leave: () => notify({ op: 'disconnect', conn }) };
  }

  /** Stop the worker and everything in it. */
  terminate(): void {
    this.port.terminate?.();
    for (const p of this.pending.values()) p.reject(new WorkerError('the browser runtime was stopped'));
    this.pending.clear();
  }

  private call<K extends Request['op']>(request: Extract<Request, { op: K }>, transfer: Transferable[] = []): Promise<Replies[K]> {
    const rid = this.nextRid++;
    return new Promise<Replies[K]>((resolve, reject) => {
      this.pending.set(rid, { resolve: resolve as (value: unknown) => void, reject });
      this.port.postMessage({ ...request, rid }, transfer);
    });
  }

  private receive(message: FromWorker): void {
    if ('rid' in message) {
      const p = this.pending.get(message.rid);
      if (!p) return;
      this.pending.delete(message.rid);
      if ('error' in message) p.reject(new WorkerError(message.error.message, message.error.code));
      else p.resolve(message.value);
      return;
    }
    switch (message.event) {
      case 'output': {
        const c = this.connections.get(message.conn);
        if (!c) return;
        c.output.enqueue(message.bytes);
        c.unacked += message.bytes.byteLength;
        // Acknowledge at once while the reader keeps up; otherwise pull() does when it catches up.
        if ((c.output.desiredSize ?? 0) >= 0) {
          this.port.postMessage({ op: 'ack', conn: message.conn, bytes: c.unacked } satisfies Notice);
          c.unacked = 0;
        }
        return;
      }
      case 'joined':
        this.connections.get(message.conn)?.joined(true);
        return;
      case 'closed': {
        const c = this.connections.get(message.conn);
        if (!c) return;
        this.connections.delete(message.conn);
        c.joined(message.joined);
        c.output.close();
        c.closed({ joined: message.joined, unread: message.unread });
        return;
      }
      case 'status':
        this.statuses.set(message.id, message.status);
        break;
      case 'deleted':
        this.statuses.delete(message.id);
        break;
    }
    for (const listener of this.listeners) listener(message);
  }
}
