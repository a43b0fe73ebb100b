// Messages between a page and the worker that runs its programs
// (worker-host.ts on the worker side, client.ts on the page side). Requests
// carry a request id and get exactly one reply; events flow unasked. Bytes
// travel as Uint8Arrays whose buffers are transferred.

import type { Status } from '../runtime/instance/status.ts';

export type Request =
  | {
      op: 'launch';
      id: string;
      /** A program, or a snapshot of one (it continues where it stopped). */
      module: Uint8Array;
      function?: string;
      principal?: string;
      /** Leave it suspended (a snapshot) or not started (a program), as the server's launch&suspend. */
      suspend?: boolean;
    }
  | { op: 'suspend'; id: string }
  | { op: 'kill'; id: string }
  | { op: 'resume'; id: string; function?: string }
  | { op: 'snapshot'; id: string }
  | { op: 'delete'; id: string }
  /** Join the program's next origin connection; the connection is `conn` from now on. */
  | { op: 'connect'; id: string; conn: number };

/** One-way messages from the page about a connection. */
export type Notice =
  | { op: 'input'; conn: number; bytes: Uint8Array }
  | { op: 'input-end'; conn: number }
  /** The page has taken this many bytes of output (flow control). */
  | { op: 'ack'; conn: number; bytes: number }
  | { op: 'disconnect'; conn: number };

export type ToWorker = (Request & { rid: number }) | Notice;

/** What a request resolves to. */
export interface Replies {
  launch: InstanceInfo;
  suspend: Status;
  kill: Status;
  resume: Status;
  snapshot: Uint8Array;
  delete: null;
  connect: null;
}

export interface InstanceInfo {
  id: string;
  /** The SHA-256 of the module it was launched from (hex). */
  module: string;
  status: Status;
}

export type Event =
  | { event: 'status'; id: string; status: Status }
  | { event: 'deleted'; id: string }
  | { event: 'debug'; id: string; bytes: Uint8Array }
  | { event: 'joined'; conn: number }
  | { event: 'output'; conn: number; bytes: Uint8Array }
  /** The connection is over; `unread` is input the program never took, for the next connection. */
  | { event: 'closed'; conn: number; joined: boolean; unread: Uint8Array[] };

export type Reply = { rid: number; value: unknown } | { rid: number; error: { message: string; code?: string } };

export type FromWorker = Reply | Event;

/** Output bytes the worker sends ahead of the page's acknowledgements. */
export const OUTPUT_WINDOW = 65536;

/** The end of a message channel (a Worker, the worker's global scope, a MessagePort). */
export interface Port {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}
