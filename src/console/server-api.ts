// The console's client of the server's API (/gate-0/, docs/api.md): fetch
// for requests, websockets for program I/O. Every request of a principal
// carries a fresh token; without an identity the console is anonymous and
// may only call programs.

import type { Connection, ConnectionEnd } from '../browser/client.ts';
import { bearer, type Identity } from './identity.ts';

export const API = '/gate-0/';
const MODULE = `${API}module/sha256/`;
const INSTANCE = `${API}instance/`;
const WASM = 'application/wasm';

/** Gate's status JSON: zero values omitted. */
export interface ApiStatus {
  state: string;
  cause?: string;
  result?: number;
  error?: string;
}

export interface ServerInstance {
  instance: string;
  module: string;
  status: ApiStatus;
  transient?: boolean;
  tags?: string[];
}

/** An answer other than 2xx: the status and the server's one line of text. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, text: string) {
    super(text || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** How a server connection ended, with the program's status when the server sent it. */
export interface ServerConnectionEnd extends ConnectionEnd {
  status?: ApiStatus;
  /** The server's reason when it closed the connection with an error. */
  error?: string;
}

type Query = [string, string][];

export class GateServer {
  private readonly origin: string;
  private readonly identity: () => Identity | null;

  constructor(origin: string, identity: () => Identity | null) {
    this.origin = origin;
    this.identity = identity;
  }

  /** The audience of tokens for this server. */
  get audience(): string {
    return `${this.origin}${API}`;
  }

  private async authorization(): Promise<string | undefined> {
    const id = this.identity();
    return id ? bearer(id, this.audience) : undefined;
  }

  private async request(method: string, path: string, query: Query, options: { body?: Uint8Array; accept?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    const auth = await this.authorization();
    if (auth) headers.Authorization = auth;
    if (options.body) headers['Content-Type'] = WASM;
    if (options.accept) headers.Accept = options.accept;
    const search = new URLSearchParams(query).toString();
    const res = await fetch(`${this.origin}${path}${search ? `?${search}` : ''}`, {
      method,
      headers,
      body: options.body as Uint8Array<ArrayBuffer> | undefined,
    });
    if (!res.ok) throw new ApiError(res.status, (await res.text()).trim());
    return res;
  }

  async instances(): Promise<ServerInstance[]> {
    const res = await this.request('POST', INSTANCE, [], { accept: 'application/json' });
    return ((await res.json()) as { instances?: ServerInstance[] }).instances ?? [];
  }

  async modules(): Promise<{ module: string; tags?: string[] }[]> {
    const res = await this.request('POST', MODULE, [], { accept: 'application/json' });
    return ((await res.json()) as { modules?: { module: string; tags?: string[] }[] }).modules ?? [];
  }

  /**
   * Upload a program (or snapshot) and launch it; returns the instance id.
   * pin keeps the module in the principal's list; instance names the new
   * instance (a migrated one keeps its id).
   */
  async launch(hash: string, body: Uint8Array, options: { function?: string; instance?: string; pin?: boolean; suspend?: boolean } = {}): Promise<string> {
    const query: Query = [['action', 'launch']];
    if (options.pin) query.push(['action', 'pin']);
    if (options.suspend) query.push(['action', 'suspend']);
    if (options.function) query.push(['function', options.function]);
    if (options.instance) query.push(['instance', options.instance]);
    const res = await this.request('POST', MODULE + hash, query, { body });
    return res.headers.get('Gate-Instance') ?? '';
  }

  /** Launch a module the principal has pinned. */
  async launchPinned(hash: string, fn?: string): Promise<string> {
    const res = await this.request('POST', MODULE + hash, [['action', 'launch'], ...(fn ? ([['function', fn]] as Query) : [])]);
    return res.headers.get('Gate-Instance') ?? '';
  }

  async info(id: string): Promise<ServerInstance> {
    const res = await this.request('POST', INSTANCE + id, [], { accept: 'application/json' });
    return (await res.json()) as ServerInstance;
  }

  async download(hash: string): Promise<Uint8Array> {
    const res = await this.request('GET', MODULE + hash, [], { accept: WASM });
    return new Uint8Array(await res.arrayBuffer());
  }

  async unpin(hash: string): Promise<void> {
    await this.request('POST', MODULE + hash, [['action', 'unpin']]);
  }

  /** An instance action (suspend, resume, kill, delete, wait, …); with wait, the status once it is not running. */
  async act(id: string, actions: string[], extra: Query = []): Promise<ApiStatus | undefined> {
    const res = await this.request('POST', INSTANCE + id, [...actions.map((a): [string, string] => ['action', a]), ...extra]);
    const status = res.headers.get('Gate-Status');
    return status ? (JSON.parse(status) as ApiStatus) : undefined;
  }

  /** A snapshot of the instance as a new pinned module; returns its hash. */
  async snapshot(id: string): Promise<string> {
    const res = await this.request('POST', INSTANCE + id, [['action', 'snapshot']]);
    const location = res.headers.get('Location') ?? '';
    return location.slice(location.lastIndexOf('/') + 1);
  }

  /** Join the instance's next origin connection. */
  io(id: string): Connection & { closed: Promise<ServerConnectionEnd> } {
    return this.socket(`${INSTANCE}${id}?action=io`, async () => {
      const auth = await this.authorization();
      return [JSON.stringify(auth ? { authorization: auth } : {})];
    });
  }

  /** Call a program (anonymously when there is no identity): its connection until it ends. */
  call(hash: string, body: Uint8Array, fn?: string): Connection & { closed: Promise<ServerConnectionEnd> } {
    const query = new URLSearchParams([['action', 'call'], ...(fn ? [['function', fn]] : [])]).toString();
    return this.socket(`${MODULE}${hash}?${query}`, async () => {
      const auth = await this.authorization();
      const first = { content_type: WASM, content_length: body.byteLength, ...(auth ? { authorization: auth } : {}) };
      return [JSON.stringify(first), body];
    });
  }

  /**
   * A websocket connection (api.md, Websockets): the opening messages, then
   * binary messages both ways; text messages from the server say whether the
   * program took the connection and, at the end, its status.
   */
  private socket(path: string, opening: () => Promise<(string | Uint8Array)[]>): Connection & { closed: Promise<ServerConnectionEnd> } {
    const ws = new WebSocket(`${this.origin.replace(/^http/, 'ws')}${path}`);
    ws.binaryType = 'arraybuffer';
    let joined!: (value: boolean) => void;
    let closed!: (end: ServerConnectionEnd) => void;
    const joinedP = new Promise<boolean>((resolve) => (joined = resolve));
    const closedP = new Promise<ServerConnectionEnd>((resolve) => (closed = resolve));
    let took = false;
    let status: ApiStatus | undefined;
    let ready = false;
    const early: Uint8Array[] = [];
    const readable = new ReadableStream<Uint8Array>({
      start(output) {
        ws.onmessage = (m) => {
          if (typeof m.data !== 'string') {
            output.enqueue(new Uint8Array(m.data as ArrayBuffer));
            return;
          }
          const message = JSON.parse(m.data) as { connected?: boolean; status?: ApiStatus; input?: boolean };
          if (message.status && !message.input) status = message.status;
          else if (message.connected === false) joined(false);
          else if (!took && message.input === undefined) {
            // {"connected": true} for io, the call's reply (`{}` or its instance) for a call.
            took = true;
            joined(true);
          }
        };
        ws.onclose = (e) => {
          output.close();
          joined(took);
          closed({ joined: took, unread: ready ? [] : early.splice(0), status, ...(e.code !== 1000 && e.reason ? { error: e.reason } : {}) });
        };
      },
      cancel() {
        ws.close();
      },
    });
    ws.onopen = () => {
      void opening().then((messages) => {
        for (const m of messages) ws.send(m as Uint8Array<ArrayBuffer> | string);
        ready = true;
        for (const chunk of early.splice(0)) ws.send(chunk as Uint8Array<ArrayBuffer>);
      });
    };
    const writable = new WritableStream<Uint8Array>({
      write(chunk) {
        if (!ready) early.push(chunk.slice());
        else if (ws.readyState === WebSocket.OPEN) ws.send(chunk as Uint8Array<ArrayBuffer>);
      },
      // A websocket has no half-close: the end of input is leaving.
      close: () => ws.close(),
    });
    return { readable, writable, joined: joinedP, closed: closedP, leave: () => ws.close() };
  }
}
