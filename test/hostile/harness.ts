// Attacks against the real gate-server: the gate-server command in a child
// process on a loopback port, with small limits (and, where an attack would
// need gigabytes, a reduced heap), plus the checks every attack test makes:
// a co-tenant (a persistent instance of another principal) keeps running and
// checkpointing, a module the server has never seen is prepared and called,
// and SIGTERM ends the server within seconds.

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from '../helpers.ts';
import { Client, Principal, sha256, testCacheDir, wasm, type Reply } from '../server/helpers.ts';

/** How long a healthy server may take for what a co-tenant needs (generous: CI machines are shared). */
export const HEALTHY_WITHIN_MS = 30_000;
/** How long SIGTERM may take to end the server. */
export const SHUTDOWN_WITHIN_MS = 15_000;

export interface GateServerOptions {
  /** -o KEY=VALUE settings. */
  config?: Record<string, string | number | boolean>;
  /** Node options of the server process (such as --max-old-space-size). */
  node?: string[];
  /** Use this data directory (kept); default: a new one, removed by stop(). */
  dataDir?: string;
}

/** Settings every attack server has unless a test says otherwise: two workers, checkpoints every second. */
const BASE: Record<string, string | number | boolean> = {
  'runtime.workers': 2,
  'runtime.checkpoint': 1,
  'runtime.cachedir': testCacheDir,
  'log.level': 'info',
};

export class GateServer {
  readonly url: string;
  readonly audience: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** The server's log, parsed JSON lines (others as { text }). */
  readonly logs: Record<string, unknown>[];
  private readonly ownDir: boolean;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(url: string, dataDir: string, ownDir: boolean, proc: ChildProcess, logs: Record<string, unknown>[], exited: GateServer['exited']) {
    this.url = url;
    this.audience = `${url}/gate-0/`;
    this.dataDir = dataDir;
    this.ownDir = ownDir;
    this.process = proc;
    this.logs = logs;
    this.exited = exited;
  }

  static async start(options: GateServerOptions = {}): Promise<GateServer> {
    const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'gate-hostile-'));
    const empty = path.join(dataDir, '..', `${path.basename(dataDir)}.toml`);
    writeFileSync(empty, '');
    const settings = { ...BASE, ...options.config };
    // -F first: it forgets everything before it (the default files, but also any option).
    const args = ['-F', empty, '--listen', '127.0.0.1:0', '--data-dir', dataDir];
    for (const [k, v] of Object.entries(settings)) args.push('-o', `${k}=${v}`);
    const proc = spawn(process.execPath, [...(options.node ?? []), path.join(root, 'bin', 'gate-server.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: Record<string, unknown>[] = [];
    let rest = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      rest += chunk.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ text: line });
        }
      }
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('exit', (code, signal) => {
        rmSync(empty, { force: true });
        resolve({ code, signal });
      }),
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /gate-server listening on (\S+)/.exec(out);
        if (m && m[1].endsWith(':6473')) reject(new Error('gate-server ignored --listen'));
        else if (m) resolve(m[1]);
      });
      void exited.then(({ code }) => reject(new Error(`gate-server exited with ${code}: ${logs.map((l) => JSON.stringify(l)).join('\n')}`)));
    });
    return new GateServer(url, dataDir, options.dataDir === undefined, proc, logs, exited);
  }

  client(principal?: Principal): Client {
    return new Client({ url: this.url, audience: this.audience }, principal);
  }

  /** Log records with this message (and these fields). */
  logged(msg: string, fields: Record<string, unknown> = {}): Record<string, unknown>[] {
    return this.logs.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  /** SIGTERM, and how it ended and how long it took. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    // GATE_HOSTILE_LOGS=1 prints the server's log when it stops (for a test that fails).
    if (process.env.GATE_HOSTILE_LOGS) for (const l of this.logs) process.stderr.write(`server: ${JSON.stringify(l).slice(0, 500)}\n`);
    const began = performance.now();
    this.process.kill(signal);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), SHUTDOWN_WITHIN_MS * 2);
    const end = await this.exited;
    clearTimeout(timer);
    if (this.ownDir) rmSync(this.dataDir, { recursive: true, force: true });
    return { ...end, ms: performance.now() - began };
  }

  /** Stop with SIGTERM and assert it ended cleanly within SHUTDOWN_WITHIN_MS. */
  async assertStopsPromptly(): Promise<void> {
    const end = await this.stop();
    assert.equal(end.code, 0, `exit code ${end.code} (signal ${end.signal})`);
    assert.ok(end.ms < SHUTDOWN_WITHIN_MS, `SIGTERM took ${Math.round(end.ms)} ms`);
  }
}

/** Resident bytes of a process (0 for one that has exited meanwhile). */
export function residentBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The processes a process started (its worker and preparer processes). */
export function childProcesses(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Wait for a condition, failing after `ms`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = HEALTHY_WITHIN_MS): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Race a promise against a deadline. */
export async function within<T>(what: string, p: Promise<T>, ms = HEALTHY_WITHIN_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A module the server has never seen: hello.wasm with a custom section of random bytes. */
export function neverSeenHello(): Uint8Array {
  const hello = wasm('examples/hello.wasm');
  const name = new TextEncoder().encode('nonce');
  const payload = crypto.getRandomValues(new Uint8Array(16));
  const content = [name.length, ...name, ...payload];
  return new Uint8Array([...hello, 0, content.length, ...content]);
}

/** Upload and call a module (as the client's principal, or anonymously); the reply has the Gate-Status trailer. */
export function uploadCall(client: Client, bytes: Uint8Array, fn: string): Promise<Reply> {
  return client.post(`/gate-0/module/sha256/${sha256(bytes)}?action=call&function=${fn}`, {
    headers: { 'Content-Type': 'application/wasm', Te: 'trailers' },
    body: bytes,
  });
}

export function anonymousCall(server: { url: string; audience: string }, bytes: Uint8Array, fn: string): Promise<Reply> {
  return uploadCall(new Client(server), bytes, fn);
}

/** The Gate-Status trailer of a call, parsed. */
export function callStatus(reply: Reply): Record<string, unknown> {
  const status = reply.trailers['gate-status'];
  assert.ok(status, `no Gate-Status trailer (HTTP ${reply.status}: ${reply.text})`);
  return JSON.parse(status) as Record<string, unknown>;
}

/**
 * A persistent instance of a principal of its own, counting in its memory
 * (counter.wasm debug_count, every 100 ms): each checkpoint of it is a new
 * snapshot, so new checkpoint hashes in the log show it runs and is
 * checkpointed.
 */
export class CoTenant {
  readonly server: GateServer;
  readonly client: Client;
  readonly id: string;

  private constructor(server: GateServer, client: Client, id: string) {
    this.server = server;
    this.client = client;
    this.id = id;
  }

  static async launch(server: GateServer): Promise<CoTenant> {
    const client = server.client(new Principal());
    const hash = await client.upload(wasm('examples/counter.wasm'));
    const id = await client.launch(hash, '&function=debug_count');
    const tenant = new CoTenant(server, client, id);
    await tenant.checkpoints(1);
    return tenant;
  }

  /** Distinct checkpoints logged for the instance so far. */
  checkpointed(): Set<unknown> {
    return new Set(this.server.logged('instance checkpointed', { instance: this.id }).map((l) => l.module));
  }

  /** Wait until `n` more distinct checkpoints than now have been logged. */
  async checkpoints(n: number): Promise<void> {
    const before = this.checkpointed().size;
    await waitFor(`${n} new checkpoints of the co-tenant`, () => this.checkpointed().size >= before + n);
  }

  /** It runs, it is checkpointed (twice more), and a never-seen module of its owner is prepared and called meanwhile. */
  async assertHealthy(): Promise<void> {
    const checkpoints = this.checkpoints(2);
    const reply = await within('a call of a never-seen module', uploadCall(this.client, neverSeenHello(), 'greet'));
    assert.equal(reply.text, 'hello, world\n');
    assert.deepEqual(callStatus(reply), { state: 'TERMINATED' });
    await checkpoints;
    assert.deepEqual(await this.client.status(this.id), { state: 'RUNNING' });
  }
}
