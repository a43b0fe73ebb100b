// Server side of a client connection to a program in a worker: reads the
// client's input stream and writes its output stream, exchanging bytes with
// the worker's ProgramBridge over a port (ports.ts). Credit based in both
// directions (see protocol.ts), so a slow client or a slow program holds back
// the other side instead of filling memory.
//
// The client's streams are locked only once the program has accepted the
// connection; a connect that never joins leaves them untouched, as
// OriginConnector.connect does in process.

import type { Port } from './ports.ts';
import { reasonText, STREAM_CHUNK, STREAM_WINDOW, type FromProgram, type ToProgram } from './protocol.ts';

const ignore = (): void => {};

export interface ClientStreams {
  input: ReadableStream<Uint8Array> | null;
  output: WritableStream<Uint8Array> | null;
  signal?: AbortSignal;
  onJoin?: () => void;
}

export class ClientBridge {
  /** Resolves as OriginConnector.connect does: true once a joined connection is over, false if none was joined. */
  readonly done: Promise<boolean>;
  readonly #port: Port;
  readonly #client: ClientStreams;
  #resolve!: (joined: boolean) => void;
  #settled = false;
  #joined = false;

  // Client → program.
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #reading = false;
  #inputDone = false;
  #rest: Uint8Array | null = null;
  #inFlight = 0;

  // Program → client.
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #outputDone = false;
  #failureSent = false;
  #outputSettled: Promise<unknown> = Promise.resolve();

  readonly #onAbort = (): void => {
    this.#post({ t: 'abort', message: reasonText(this.#client.signal?.reason) });
  };

  constructor(port: Port, client: ClientStreams) {
    this.#port = port;
    this.#client = client;
    this.done = new Promise<boolean>((resolve) => {
      this.#resolve = resolve;
    });
    port.on('message', (m: FromProgram) => this.#receive(m));
    client.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** The worker is gone: the client is cut (if it had joined) and connect settles. */
  lost(reason: Error): void {
    if (this.#settled) return;
    if (this.#joined) {
      this.#inputDone = true;
      this.#reader?.cancel(reason).catch(ignore);
      if (this.#writer && !this.#outputDone) {
        this.#outputDone = true;
        this.#writer.abort(reason).catch(ignore);
      }
    }
    this.#settle(this.#joined);
  }

  #post(m: ToProgram): void {
    if (this.#settled) return;
    this.#port.postMessage(m);
  }

  #settle(joined: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#client.signal?.removeEventListener('abort', this.#onAbort);
    this.#port.close();
    this.#resolve(joined);
  }

  #receive(m: FromProgram): void {
    if (this.#settled) return;
    switch (m.t) {
      case 'join':
        this.#join();
        break;
      case 'done':
        this.#finish(m.joined);
        break;
      case 'in-ack':
        this.#inFlight -= m.n;
        this.#pump();
        break;
      case 'in-cancel':
        this.#inputDone = true;
        this.#rest = null;
        this.#reader?.cancel(new Error(m.message)).catch(ignore);
        break;
      case 'out-data':
        this.#write(m.chunk);
        break;
      case 'out-end':
        this.#closeOutput();
        break;
      case 'out-abort':
        if (this.#writer && !this.#outputDone) {
          this.#outputDone = true;
          this.#outputSettled = this.#writer.abort(new Error(m.message)).catch(ignore);
        }
        break;
    }
  }

  #join(): void {
    this.#joined = true;
    const { input, output } = this.#client;
    if (output) {
      try {
        const w = output.getWriter();
        this.#writer = w;
        w.closed.catch((err: unknown) => this.#outputFailed(err));
      } catch (err) {
        this.#outputFailed(err);
      }
    }
    if (input) {
      try {
        this.#reader = input.getReader();
        this.#reader.closed.catch(ignore);
      } catch (err) {
        this.#inputDone = true;
        this.#post({ t: 'in-error', message: reasonText(err) });
      }
    }
    try {
      this.#client.onJoin?.();
    } catch {
      // The caller's callback failing does not concern the program.
    }
    this.#pump();
  }

  #finish(joined: boolean): void {
    if (joined) {
      // The program side cut or finished the connection; make sure the client sees it end.
      if (!this.#inputDone) {
        this.#inputDone = true;
        this.#reader?.cancel().catch(ignore);
      }
      if (this.#writer && !this.#outputDone) {
        this.#outputDone = true;
        const signal = this.#client.signal;
        this.#outputSettled = (signal?.aborted ? this.#writer.abort(signal.reason) : this.#writer.close()).catch(ignore);
      }
    }
    this.#outputSettled.then(() => this.#settle(joined));
  }

  // Send client input while the program side has room for it.
  #pump(): void {
    const reader = this.#reader;
    if (reader === null || this.#inputDone) return;
    while (this.#rest !== null && this.#inFlight < STREAM_WINDOW) {
      const n = Math.min(STREAM_CHUNK, this.#rest.byteLength);
      const piece = this.#rest.subarray(0, n);
      this.#inFlight += n;
      this.#post({ t: 'in-data', chunk: piece });
      this.#rest = n < this.#rest.byteLength ? this.#rest.subarray(n) : null;
    }
    if (this.#rest !== null || this.#inFlight >= STREAM_WINDOW || this.#reading) return;
    this.#reading = true;
    reader.read().then(
      (result) => {
        this.#reading = false;
        if (this.#inputDone) return;
        if (result.done) {
          this.#inputDone = true;
          this.#post({ t: 'in-end' });
          return;
        }
        if (!(result.value instanceof Uint8Array)) {
          this.#inputDone = true;
          this.#post({ t: 'in-error', message: 'client input chunk is not a Uint8Array' });
          reader.cancel().catch(ignore);
          return;
        }
        if (result.value.byteLength > 0) this.#rest = result.value;
        this.#pump();
      },
      (err: unknown) => {
        this.#reading = false;
        if (this.#inputDone) return;
        this.#inputDone = true;
        this.#post({ t: 'in-error', message: reasonText(err) });
      },
    );
  }

  #write(chunk: Uint8Array): void {
    const w = this.#writer;
    if (w === null || this.#outputDone) {
      // Nobody takes the output any more: acknowledge so the program side is not held up.
      this.#post({ t: 'out-ack', n: chunk.byteLength });
      return;
    }
    w.write(chunk).then(
      () => this.#post({ t: 'out-ack', n: chunk.byteLength }),
      (err: unknown) => this.#outputFailed(err),
    );
  }

  #closeOutput(): void {
    const w = this.#writer;
    if (w === null || this.#outputDone) {
      this.#post({ t: 'out-closed' });
      return;
    }
    this.#outputDone = true;
    this.#outputSettled = w.close().then(
      () => this.#post({ t: 'out-closed' }),
      (err: unknown) => this.#outputFailed(err),
    );
  }

  // The client's output failed (it went away): the program side learns it once.
  #outputFailed(err: unknown): void {
    if (this.#failureSent) return;
    this.#failureSent = true;
    this.#outputDone = true;
    this.#post({ t: 'out-failed', message: reasonText(err) });
  }
}
