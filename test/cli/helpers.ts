// Helpers for the CLI tests: a private home for each test file (config,
// state, daemon runtime directory, an SSH key), and the real binaries run as
// child processes: `gate`, `gate-daemon`, `gate-server`.

import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { defaultCacheDir } from '../../src/host/module-cache.ts';
import { root } from '../helpers.ts';

export const GATE = path.join(root, 'bin', 'gate.js');
export const GATE_DAEMON = path.join(root, 'bin', 'gate-daemon.js');
export const GATE_SERVER = path.join(root, 'bin', 'gate-server.js');
export const example = (name: string) => path.join(root, 'guest', 'examples', name);

export interface TestHome {
  dir: string;
  env: NodeJS.ProcessEnv;
  keyFile: string;
  cleanup(): Promise<void>;
}

/** A fresh home: HOME, XDG dirs, daemon dir and ~/.ssh/id_ed25519; prepared modules are shared with other tests. */
export function makeHome(): TestHome {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gcli-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    GATE_CACHE_DIR: defaultCacheDir(),
    NO_COLOR: '1',
  };
  delete env.GATE_DAEMON_DIR;
  delete env.GATE_DAEMON_DATA;
  delete env.FORCE_COLOR;
  mkdirSync(path.join(dir, '.ssh'), { mode: 0o700 });
  const keyFile = path.join(dir, '.ssh', 'id_ed25519');
  writeFileSync(keyFile, openSSHKey(), { mode: 0o600 });
  return {
    dir,
    env,
    keyFile,
    async cleanup() {
      await run(GATE_DAEMON, ['--stop'], env);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  out: Buffer;
}

export function run(bin: string, args: string[], env: NodeJS.ProcessEnv, input?: string | Buffer): Promise<Result> {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      resolve({ code, stdout: stdout.toString(), stderr: Buffer.concat(err).toString(), out: stdout });
    });
  });
}

/** `gate ARGS` with that home. */
export function gate(home: TestHome, args: string[], input?: string | Buffer): Promise<Result> {
  return run(GATE, args, home.env, input);
}

/** `gate ARGS` left running (io of an endless program); stdin stays open. */
export function spawnGate(home: TestHome, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [GATE, ...args], { env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves with the text once `pattern` matches what the stream has produced. */
export function waitForOutput(stream: NodeJS.ReadableStream, pattern: RegExp, collected: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pattern.test(collected.text)) {
        stream.off('data', onData);
        stream.off('end', onEnd);
        resolve(collected.text);
      }
    };
    const onData = () => setImmediate(check);
    const onEnd = () => {
      setImmediate(() => (pattern.test(collected.text) ? resolve(collected.text) : reject(new Error(`output ended before ${pattern}: ${collected.text.slice(-200)}`))));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    check();
  });
}

/** Collects a child's stdout as text. */
export function collect(stream: NodeJS.ReadableStream): { text: string } {
  const c = { text: '' };
  stream.on('data', (d: Buffer) => {
    c.text += d.toString();
  });
  return c;
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A gate-server process on a free loopback port with its own data directory. */
export async function startServer(home: TestHome, name: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const dataDir = path.join(home.dir, name);
  const child = spawn(process.execPath, [GATE_SERVER, '-F', '/dev/null', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '-o', 'log.level=warn', ...extraArgs], {
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  child.on('exit', () => child.stdout.emit('end'));
  let text: string;
  try {
    text = await waitForOutput(child.stdout, /listening on (\S+)\n/, out);
  } catch {
    throw new Error(`gate-server did not start: ${err.text}`);
  }
  const url = /listening on (\S+)\n/.exec(text)![1];
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

// OpenSSH private key files made by hand (PROTOCOL.key), so tests need no ssh-keygen.

function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export interface KeyShape {
  /** Key type written in the file (default ssh-ed25519). */
  type?: string;
  /** Mark it encrypted with a passphrase. */
  encrypted?: boolean;
}

export function openSSHKey(shape: KeyShape = {}): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const type = shape.type ?? 'ssh-ed25519';
  const publicBlob = Buffer.concat([sshString(type), sshString(x)]);
  const check = randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([uint32(check), uint32(check), sshString(type), sshString(x), sshString(Buffer.concat([d, x])), sshString('test@example')]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const cipher = shape.encrypted ? 'aes256-ctr' : 'none';
  const kdf = shape.encrypted ? 'bcrypt' : 'none';
  const kdfOptions = shape.encrypted ? Buffer.concat([sshString(randomBytes(16)), uint32(16)]) : Buffer.alloc(0);
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString(cipher),
    sshString(kdf),
    sshString(kdfOptions),
    uint32(1),
    sshString(publicBlob),
    sshString(shape.encrypted ? randomBytes(priv.length) : priv),
  ]);
  const lines = blob.toString('base64').match(/.{1,70}/g)!.join('\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** The principal id (`ed25519:<base64url key>`) of an OpenSSH private key file made by openSSHKey. */
export function principalOfKey(text: string): string {
  const blob = Buffer.from(text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  let at = 'openssh-key-v1\0'.length;
  const next = () => {
    const n = blob.readUInt32BE(at);
    at += 4 + n;
    return blob.subarray(at - n, at);
  };
  next(); // cipher
  next(); // kdf
  next(); // kdf options
  at += 4; // key count
  const publicBlob = next();
  return `ed25519:${publicBlob.subarray(publicBlob.length - 32).toString('base64url')}`;
}
