// The console's terminal: one program connection at a time, wherever the
// program runs. Output goes to the output element in arrival order; typed
// input waits in a queue until a connection takes it, and what a connection
// did not take (it ended, the program moved) goes to the next one, so a
// migration loses or repeats nothing the user typed or the program wrote.

import type { Connection, ConnectionEnd } from '../browser/client.ts';

/** Output kept on the page; older text is dropped from the top. */
const MAX_OUTPUT = 256 * 1024;

/** Where the program of a connection runs. */
export type Where = 'browser' | 'server';

type Attachment =
  | { kind: 'none' }
  | { kind: 'attached'; instance: string; where: Where; connection: Connection; over: Promise<ConnectionEnd> };

export class Terminal {
  private readonly output: HTMLElement;
  private readonly onChange: () => void;
  private attachment: Attachment = { kind: 'none' };
  private queue: Uint8Array[] = [];
  private inputEnded = false;
  private writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  /** Characters shown. */
  private shown = 0;

  constructor(output: HTMLElement, onChange: () => void) {
    this.output = output;
    this.onChange = onChange;
  }

  /** The instance whose connection the terminal shows, if any. */
  get instance(): string | undefined {
    return this.attachment.kind === 'attached' ? this.attachment.instance : undefined;
  }

  get where(): Where | undefined {
    return this.attachment.kind === 'attached' ? this.attachment.where : undefined;
  }

  clear(): void {
    this.output.textContent = '';
    this.shown = 0;
    this.queue = [];
    this.inputEnded = false;
  }

  /** Show the console's own words (status, errors) between the program's output. */
  note(text: string): void {
    this.span('note', `${text}\n`);
  }

  /** Show what the program wrote to its debug log. */
  debug(text: string): void {
    this.span('debug', text);
  }

  private span(className: string, text: string): void {
    const span = document.createElement('span');
    span.className = className;
    span.textContent = text;
    this.output.append(span);
    this.shown += text.length;
    this.output.scrollTop = this.output.scrollHeight;
  }

  /**
   * Show a connection; queued input goes to it. Resolves when it is over
   * and all its output is shown. A connection shown before is left.
   */
  attach(instance: string, where: Where, connection: Connection): Promise<ConnectionEnd> {
    if (this.attachment.kind === 'attached') this.attachment.connection.leave();
    this.writer = connection.writable.getWriter();
    const over = this.pump(instance, connection);
    this.attachment = { kind: 'attached', instance, where, connection, over };
    this.flush();
    this.onChange();
    return over;
  }

  /** Resolves once the shown connection (if it is of this instance) is over and its output shown. */
  async detached(instance: string): Promise<void> {
    if (this.attachment.kind === 'attached' && this.attachment.instance === instance) await this.attachment.over;
  }

  /** Leave the shown connection. */
  leave(): void {
    if (this.attachment.kind === 'attached') this.attachment.connection.leave();
  }

  send(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.flush();
  }

  /** End of input, once the queued input has gone. */
  endInput(): void {
    this.inputEnded = true;
    this.flush();
  }

  private flush(): void {
    const w = this.writer;
    if (!w) return;
    for (const chunk of this.queue.splice(0)) w.write(chunk).catch(() => {});
    if (this.inputEnded) {
      this.inputEnded = false;
      w.close().catch(() => {});
      this.writer = null;
    }
  }

  private async pump(instance: string, connection: Connection): Promise<ConnectionEnd> {
    const decoder = new TextDecoder();
    const reader = connection.readable.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      this.append(decoder.decode(value, { stream: true }));
    }
    this.append(decoder.decode());
    const end = await connection.closed;
    // Input the program never took goes to the next connection first.
    this.queue = [...end.unread, ...this.queue];
    if (this.attachment.kind === 'attached' && this.attachment.instance === instance && this.attachment.connection === connection) {
      this.attachment = { kind: 'none' };
      this.writer = null;
    }
    this.onChange();
    return end;
  }

  private append(text: string): void {
    if (text === '') return;
    const last = this.output.lastChild;
    if (last && last.nodeType === Node.TEXT_NODE) (last as Text).appendData(text);
    else this.output.append(text);
    this.shown += text.length;
    if (this.shown > MAX_OUTPUT) this.trim();
    this.output.scrollTop = this.output.scrollHeight;
  }

  private trim(): void {
    let excess = this.shown - MAX_OUTPUT / 2;
    while (excess > 0 && this.output.firstChild) {
      const first = this.output.firstChild;
      const length = first.textContent?.length ?? 0;
      if (length <= excess || first.nodeType !== Node.TEXT_NODE) {
        first.remove();
        excess -= length;
      } else {
        (first as Text).deleteData(0, excess);
        excess = 0;
      }
    }
    this.shown = this.output.textContent?.length ?? 0;
  }
}
