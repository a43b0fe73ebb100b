// Helpers for service tests: drive a ServiceInstance as the runtime would,
// and fake client connections made of web streams. No test framework here,
// so any test runner can use them.

import {
  Domain,
  HEADER_SIZE,
  dataNote,
  dataPayload,
  dataStreamId,
  makeDataPacket,
  makeFlowPacket,
  makePacket,
  packetDomain,
  packetIndex,
  readFlows,
} from '../runtime/packet/packet.ts';
import type { ServiceContext, ServiceFactory, ServiceInstance } from '../runtime/service/service.ts';

export const TEST_CODE = 5;

export const testContext: ServiceContext = {
  instance: '00000000-0000-4000-8000-000000000000',
  scope: [],
};

/** A packet as the program sees it, decoded for assertions. */
export type Seen =
  | { call: Uint8Array; index: number }
  | { info: Uint8Array }
  | { flow: { id: number; value: number }[] }
  | { data: { id: number; note: number; bytes: Uint8Array } };

export function decodePacket(p: Uint8Array): Seen {
  switch (packetDomain(p)) {
    case Domain.CALL:
      return { call: p.slice(HEADER_SIZE), index: packetIndex(p) };
    case Domain.INFO:
      return { info: p.slice(HEADER_SIZE) };
    case Domain.FLOW:
      return { flow: readFlows(p) };
    default:
      return { data: { id: dataStreamId(p), note: dataNote(p), bytes: dataPayload(p).slice() } };
  }
}

/** Runs one service instance the way the runtime does and records its output. */
export class Harness {
  readonly instance: ServiceInstance;
  /** Packets sent or returned to the program, in queue order. */
  readonly sent: Uint8Array[] = [];
  readonly aborts: Error[] = [];

  constructor(factory: ServiceFactory, saved: Uint8Array | null = null, context: ServiceContext = testContext) {
    this.instance = factory.create(context, { maxSendSize: 65536, code: TEST_CODE }, saved);
    this.instance.start(
      (p) => this.sent.push(p),
      (e) => this.aborts.push(e),
    );
  }

  /** Deliver a whole packet; a reply is queued like the runtime does. */
  handle(packet: Uint8Array): void {
    const reply = this.instance.handle(packet);
    if (reply) this.sent.push(reply);
  }

  call(content: Uint8Array | string = new Uint8Array(0)): void {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    const p = makePacket(HEADER_SIZE + bytes.length, TEST_CODE, Domain.CALL);
    p.set(bytes, HEADER_SIZE);
    this.handle(p);
  }

  info(content: Uint8Array = new Uint8Array(0)): void {
    const p = makePacket(HEADER_SIZE + content.length, TEST_CODE, Domain.INFO);
    p.set(content, HEADER_SIZE);
    this.handle(p);
  }

  flow(...flows: [id: number, value: number][]): void {
    this.handle(makeFlowPacket(TEST_CODE, flows.map(([id, value]) => ({ id, value }))));
  }

  data(id: number, bytes: Uint8Array | string = new Uint8Array(0), note = 0): void {
    const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
    this.handle(makeDataPacket(TEST_CODE, id, b, note));
  }

  /** Decoded packets sent since the last take(). */
  take(): Seen[] {
    return this.sent.splice(0).map(decodePacket);
  }

  shutdown(): Uint8Array {
    return this.instance.shutdown();
  }
}

/** Let pending promise callbacks and timers run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** A client input whose chunks the test pushes. */
export class FakeInput {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  cancelled = false;
  cancelReason: unknown;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#controller = c;
        },
        cancel: (reason) => {
          this.cancelled = true;
          this.cancelReason = reason;
        },
      },
      { highWaterMark: 0 },
    );
  }

  push(chunk: Uint8Array | string): void {
    this.#controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
  }

  end(): void {
    this.#controller.close();
  }

  fail(error: unknown = new Error('client input failed')): void {
    this.#controller.error(error);
  }
}

/** A client output that records what it receives; it may hold writes until released. */
export class FakeOutput {
  readonly stream: WritableStream<Uint8Array>;
  readonly chunks: Uint8Array[] = [];
  closed = false;
  aborted = false;
  #held: (() => void)[] = [];
  #hold = false;
  #controller!: WritableStreamDefaultController;

  constructor(options: { hold?: boolean } = {}) {
    this.#hold = options.hold ?? false;
    this.stream = new WritableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      write: (chunk) => {
        this.chunks.push(chunk.slice());
        if (!this.#hold) return;
        return new Promise<void>((resolve) => this.#held.push(resolve));
      },
      close: () => {
        this.closed = true;
      },
      abort: () => {
        this.aborted = true;
      },
    });
  }

  /** Everything received, as one byte array. */
  get bytes(): Uint8Array {
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }

  /** Complete the held writes and stop holding. */
  release(): void {
    this.#hold = false;
    for (const r of this.#held.splice(0)) r();
  }

  /** Complete one held write. */
  releaseOne(): void {
    this.#held.shift()?.();
  }

  /** Make the sink fail, as when the client disconnects. */
  fail(error: unknown = new Error('client output failed')): void {
    this.#controller.error(error);
    for (const r of this.#held.splice(0)) r();
  }
}
