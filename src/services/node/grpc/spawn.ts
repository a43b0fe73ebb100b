// External services in a child process (Gate's `service.grpc.commands`,
// services.md §5.5): the child gets one end of a connected Unix stream
// socket as file descriptor 3 and serves gRPC on it, with no listener.
//
// Node has no socketpair(), so the pair is made with a private, temporary
// Unix socket: the gRPC client dials it, the one accepted connection becomes
// the child's fd 3, and the listener is removed. As in Gate, there is no
// reconnection: if the child dies its services fail.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectExternalServices, ExternalServiceError, type ExternalConnection } from './client.ts';

export interface SpawnedServices extends ExternalConnection {
  readonly child: ChildProcess;
}

/**
 * Parse a command as Gate does: words split on whitespace; a first word
 * `@path` names the executable and the other words are argv (argv[0]
 * included), else word 0 is both.
 */
export function parseCommand(command: string): { file: string; argv0: string; args: string[] } {
  const words = command.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) throw new ExternalServiceError('empty external service command');
  if (words[0].startsWith('@')) {
    if (words.length < 2) throw new ExternalServiceError(`external service command ${command} has no argv[0]`);
    return { file: words[0].slice(1), argv0: words[1], args: words.slice(2) };
  }
  return { file: words[0], argv0: words[0], args: words.slice(1) };
}

/** Start the command and connect to the services it offers. Its stderr lines go to log. */
export async function spawnExternalServices(
  command: string,
  options: { log?: (line: string) => void; timeout?: number } = {},
): Promise<SpawnedServices> {
  const { file, argv0, args } = parseCommand(command);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-grpc-'));
  const sock = path.join(dir, 'pair.sock');
  const listener = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(sock, () => resolve());
  });
  let child: ChildProcess | undefined;
  const spawned = new Promise<ChildProcess>((resolve, reject) => {
    listener.once('connection', (socket: net.Socket) => {
      listener.close();
      rmSync(dir, { recursive: true, force: true });
      try {
        const c = spawn(file, args, { argv0, stdio: ['ignore', 'ignore', 'pipe', socket] });
        child = c;
        // The child has its own copy; ours would compete for the bytes.
        socket.destroy();
        let buffered = '';
        c.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          buffered += chunk;
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const l of lines) options.log?.(l);
        });
        c.once('error', reject);
        c.once('spawn', () => resolve(c));
      } catch (e) {
        reject(e);
      }
    });
  });
  try {
    const [conn] = await Promise.all([
      connectExternalServices({ target: `unix:${sock}`, insecure: true, timeout: options.timeout }),
      spawned,
    ]);
    const c = child!;
    return {
      services: conn.services,
      child: c,
      close() {
        conn.close();
        c.kill('SIGTERM');
      },
    };
  } catch (e) {
    listener.close();
    rmSync(dir, { recursive: true, force: true });
    child?.kill('SIGTERM'); // startup failed after the spawn (Gate does the same)
    throw e;
  }
}
