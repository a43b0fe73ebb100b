// Calls and notes in both directions over one IPC channel between the
// supervisor and a shard: a call gets one answer (a value or an error),
// a note none. Errors keep what the other side needs to answer a client:
// an executor failure's kind, or an HTTP status with its text and headers.

import { HttpError, type FailType } from '../api/errors.ts';
import { ExecError, type ExecErrorKind } from '../exec/executor.ts';

export type Message =
  | { t: 'call'; id: number; kind: string; body: unknown }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number; error: WireError }
  | { t: 'note'; kind: string; body: unknown };

type WireError =
  | { type: 'exec'; kind: ExecErrorKind; message: string }
  | { type: 'http'; status: number; text: string; headers: Record<string, string>; fail?: FailType }
  | { type: 'other'; message: string };

export interface RpcHandlers {
  call(kind: string, body: unknown): unknown;
  note(kind: string, body: unknown): void;
}

function toWire(error: unknown): WireError {
  if (error instanceof ExecError) return { type: 'exec', kind: error.kind, message: error.message };
  if (error instanceof HttpError) return { type: 'http', status: error.status, text: error.text, headers: error.headers, fail: error.fail };
  return { type: 'other', message: (error as Error)?.message ?? String(error) };
}

function fromWire(e: WireError): Error {
  if (e.type === 'exec') return new ExecError(e.kind, e.message);
  if (e.type === 'http') {
    const error = new HttpError(e.status, e.text, e.headers);
    if (e.fail) error.failing(e.fail);
    return error;
  }
  return new Error(e.message);
}

export class Rpc {
  private readonly send: (m: Message) => void;
  private readonly handlers: RpcHandlers;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private closed: Error | undefined;

  constructor(send: (m: Message) => void, handlers: RpcHandlers) {
    this.send = send;
    this.handlers = handlers;
  }

  call<T>(kind: string, body: unknown = null): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.send({ t: 'call', id, kind, body });
    });
  }

  note(kind: string, body: unknown = null): void {
    if (!this.closed) this.send({ t: 'note', kind, body });
  }

  receive(m: Message): void {
    switch (m.t) {
      case 'call':
        Promise.resolve()
          .then(() => this.handlers.call(m.kind, m.body))
          .then(
            (value) => {
              if (!this.closed) this.send({ t: 'result', id: m.id, value });
            },
            (error: unknown) => {
              if (!this.closed) this.send({ t: 'error', id: m.id, error: toWire(error) });
            },
          );
        return;
      case 'note':
        this.handlers.note(m.kind, m.body);
        return;
      case 'result':
      case 'error': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.t === 'result') p.resolve(m.value);
        else p.reject(fromWire(m.error));
      }
    }
  }

  /** The other side is gone: calls under way fail with `error`, later ones too. */
  close(error: Error): void {
    this.closed ??= error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }
}
