// Worker side of a client connection: web streams for the program's origin
// service whose bytes travel over a port (ports.ts) to the server, where the
// client's own streams are (bridge-client.ts). Both directions are credit
// based: a side sends at most STREAM_WINDOW bytes that the other side has not
// acknowledged, so neither process buffers more than that per direction.

import type { Port } from './ports.ts';
import { reasonText, STREAM_WINDOW, type FromProgram, type ToProgram } from './protocol.ts';

export class ProgramBridge {
  readonly input: ReadableStream<Uint8Array> | null;
  readonly output: WritableStream<Uint8Array> | null;
  readonly #port: Port;
  readonly #abort = new AbortController();

  // Client → program.
  #queue: Uint8Array[] = [];
  #inputEnded = false;
  #inputError: Error | null = null;
  #inputWaiter: (() => void) | null = null;

  // Program → client.
  #inFlight = 0;
  #outputController: WritableStreamDefaultController | null = null;
  #outputFailure: Error | null = null;
  #creditWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  #closeWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(port: Port, hasInput: boolean, hasOutput: boolean) {
    this.#port = port;
    this.input = hasInput ? this.#makeInput() : null;
    this.output = hasOutput ? this.#makeOutput() : null;
    port.on('message', (m: ToProgram) => this.#receive(m));
  }

  /** Aborted when the client goes away (the main thread's signal fired). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  joined(): void {
    this.#post({ t: 'join' });
  }

  /** The program side is over; the main thread closes the port when it has seen everything before this. */
  done(joined: boolean): void {
    this.#post({ t: 'done', joined });
  }

  #post(m: FromProgram): void {
    this.#port.postMessage(m);
  }

  #receive(m: ToProgram): void {
    switch (m.t) {
      case 'in-data':
        this.#queue.push(m.chunk);
        this.#wakeInput();
        break;
      case 'in-end':
        this.#inputEnded = true;
        this.#wakeInput();
        break;
      case 'in-error':
        this.#inputError = new Error(m.message);
        this.#wakeInput();
        break;
      case 'out-ack':
        this.#inFlight -= m.n;
        if (this.#inFlight < STREAM_WINDOW && this.#creditWaiter) {
          const w = this.#creditWaiter;
          this.#creditWaiter = null;
          w.resolve();
        }
        break;
      case 'out-closed':
        this.#closeWaiter?.resolve();
        this.#closeWaiter = null;
        break;
      case 'out-failed':
        this.#failOutput(new Error(m.message));
        break;
      case 'abort':
        this.#abort.abort(new Error(m.message));
        break;
    }
  }

  #wakeInput(): void {
    const w = this.#inputWaiter;
    this.#inputWaiter = null;
    w?.();
  }

  #makeInput(): ReadableStream<Uint8Array> {
    // highWaterMark 0: a chunk is taken from the queue only when the program
    // side reads, and only then is its credit returned to the client side.
    return new ReadableStream<Uint8Array>(
      {
        pull: (controller) => this.#pull(controller),
        cancel: (reason) => {
          this.#queue = [];
          this.#post({ t: 'in-cancel', message: reasonText(reason) });
        },
      },
      { highWaterMark: 0 },
    );
  }

  #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> | void {
    const chunk = this.#queue.shift();
    if (chunk) {
      controller.enqueue(chunk);
      this.#post({ t: 'in-ack', n: chunk.byteLength });
      return;
    }
    if (this.#inputError) {
      controller.error(this.#inputError);
      return;
    }
    if (this.#inputEnded) {
      controller.close();
      return;
    }
    return new Promise<void>((resolve) => {
      this.#inputWaiter = resolve;
    }).then(() => this.#pull(controller));
  }

  #makeOutput(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#outputController = controller;
      },
      write: (chunk) => {
        if (this.#outputFailure) throw this.#outputFailure;
        // Serialized at once (the program may reuse its buffer afterwards).
        this.#inFlight += chunk.byteLength;
        this.#post({ t: 'out-data', chunk });
        if (this.#inFlight < STREAM_WINDOW) return;
        return new Promise<void>((resolve, reject) => {
          this.#creditWaiter = { resolve, reject };
        });
      },
      close: () => {
        if (this.#outputFailure) throw this.#outputFailure;
        this.#post({ t: 'out-end' });
        // Closed means the client's writer has closed (the caller waits for that).
        return new Promise<void>((resolve, reject) => {
          this.#closeWaiter = { resolve, reject };
        });
      },
      abort: (reason) => {
        this.#post({ t: 'out-abort', message: reasonText(reason) });
      },
    });
  }

  #failOutput(error: Error): void {
    if (this.#outputFailure) return;
    this.#outputFailure = error;
    this.#creditWaiter?.reject(error);
    this.#creditWaiter = null;
    this.#closeWaiter?.reject(error);
    this.#closeWaiter = null;
    try {
      this.#outputController?.error(error);
    } catch {
      // Already closed or errored.
    }
  }
}
