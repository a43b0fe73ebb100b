// Message ports carried over a worker process's IPC channel: a client
// connection gets a port of its own on both sides (bridge-client.ts,
// bridge-program.ts), and its messages travel as envelopes, in order with
// the rest of the channel. A closed port drops what still arrives for it.

/** What the connection bridges need of a port. */
export interface Port {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: never) => void): void;
  close(): void;
}

/** A port message or a port's end on the channel. */
export interface PortEnvelope {
  port: number;
  message?: unknown;
  close?: true;
}

class ChannelPort implements Port {
  readonly id: number;
  private readonly hub: PortHub;
  private listener: ((message: never) => void) | undefined;
  private closed = false;

  constructor(id: number, hub: PortHub) {
    this.id = id;
    this.hub = hub;
  }

  postMessage(message: unknown): void {
    if (!this.closed) this.hub.send({ port: this.id, message });
  }

  on(_event: 'message', listener: (message: never) => void): void {
    this.listener = listener;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.send({ port: this.id, close: true });
    this.hub.forget(this.id);
  }

  deliver(envelope: PortEnvelope): void {
    if (envelope.close) {
      this.closed = true;
      this.hub.forget(this.id);
      return;
    }
    this.listener?.(envelope.message as never);
  }
}

/** The ports of one side of one channel. */
export class PortHub {
  readonly send: (envelope: PortEnvelope) => void;
  private readonly ports = new Map<number, ChannelPort>();
  private nextId = 1;

  constructor(send: (envelope: PortEnvelope) => void) {
    this.send = send;
  }

  /** A new port (the side that opens it names it to the other with its id). */
  open(id = this.nextId++): Port & { id: number } {
    const port = new ChannelPort(id, this);
    this.ports.set(id, port);
    return port;
  }

  deliver(envelope: PortEnvelope): void {
    this.ports.get(envelope.port)?.deliver(envelope);
  }

  forget(id: number): void {
    this.ports.delete(id);
  }
}
