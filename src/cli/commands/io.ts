// `io` joins standard input and output to a running instance's next origin
// connection; `repl` does the same line by line with a prompt and history.

import { appendFileSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { CliError } from '../errors.ts';
import { copyOutput } from '../output.ts';
import { INSTANCE_PATH } from '../http-client.ts';
import type { Session } from '../session.ts';
import { instanceArg } from './instance.ts';

async function connect(s: Session, id: string, input: PassThrough): Promise<IncomingMessage> {
  try {
    return await s.client.request({
      method: 'POST',
      path: INSTANCE_PATH + instanceArg(id),
      query: [['action', 'io']],
      trailers: true,
      body: input,
    });
  } catch (error) {
    if (error instanceof CliError && error.message === '409 Conflict') {
      throw new CliError(`instance ${id} is not running or does not accept connections`);
    }
    throw error;
  }
}

export async function ioCommand(s: Session, id: string): Promise<void> {
  const input = new PassThrough();
  const res = await connect(s, id, input);
  process.stdin.pipe(input);
  try {
    await copyOutput(res, s.client.name);
  } finally {
    process.stdin.unpipe(input);
    input.destroy();
  }
}

export async function replCommand(s: Session, id: string): Promise<void> {
  const input = new PassThrough();
  const res = await connect(s, id, input);
  const historyFile = s.config.repl.historyfile;
  let history: string[] = [];
  if (historyFile) {
    try {
      history = readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, s.config.repl.historylimit);
    } catch {
      // no history yet
    }
  }
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', history, historySize: s.config.repl.historylimit, terminal: process.stdin.isTTY === true });
  const interactive = process.stdin.isTTY === true;
  rl.on('line', (line) => {
    input.write(`${line}\n`);
    if (historyFile && line.trim() !== '') appendFileSync(historyFile, `${line}\n`, { mode: 0o600 });
    if (interactive) rl.prompt();
  });
  rl.on('close', () => input.end());
  if (interactive) rl.prompt();
  for await (const chunk of res) {
    if (interactive) {
      // Print program output above the prompt line, then redraw it.
      process.stdout.write('\r\x1b[K');
      process.stdout.write(chunk as Buffer);
      rl.prompt(true);
    } else process.stdout.write(chunk as Buffer);
  }
  rl.close();
  if (interactive) process.stdout.write('\n');
}
