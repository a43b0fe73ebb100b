// workerd (Cloudflare Workers' runtime, npm @cloudflare/workerd-linux-64) as
// the server bench's peer: a worker that answers "hello, world\n" in
// JavaScript, and one that instantiates a wasm module for every request and
// answers what its greet() writes (bench/guest/hello_workerd.wat). Each
// runs in a workerd process of its own on a loopback port.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const JS_WORKER = `export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response('hello, world\\n');
  },
};
`;

const WASM_WORKER = `import hello from 'hello.wasm';
export default {
  async fetch(request) {
    await request.arrayBuffer();
    const instance = await WebAssembly.instantiate(hello, {});
    const n = instance.exports.greet();
    return new Response(new Uint8Array(instance.exports.memory.buffer, 0, n).slice());
  },
};
`;

/** The workerd binary, when the package is installed for this platform. */
export function workerdBinary(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('@cloudflare/workerd-linux-64/package.json');
    const bin = path.join(path.dirname(pkg), 'bin', 'workerd');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

export interface RunningWorkerd {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Start workerd with a hello worker in JavaScript, or in wasm (`wasm`: the module). */
export async function startWorkerd(binary: string, port: number, wasm?: Uint8Array): Promise<RunningWorkerd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-workerd-'));
  writeFileSync(path.join(dir, 'worker.js'), wasm ? WASM_WORKER : JS_WORKER);
  if (wasm) writeFileSync(path.join(dir, 'hello.wasm'), wasm);
  const modules = [`(name = "worker", esModule = embed "worker.js")`, ...(wasm ? [`(name = "hello.wasm", wasm = embed "hello.wasm")`] : [])];
  writeFileSync(
    path.join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ]
);
const hello :Workerd.Worker = (
  modules = [ ${modules.join(', ')} ],
  compatibilityDate = "2024-09-01",
);
`,
  );
  const child: ChildProcess = spawn(binary, ['serve', path.join(dir, 'config.capnp')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  // workerd says nothing when it listens: ask until it answers.
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url, { method: 'POST', body: 'x' });
      if ((await r.text()) === 'hello, world\n') break;
    } catch {
      // not listening yet
    }
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`workerd did not start: ${stderr.slice(0, 400)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    pid: child.pid!,
    async close() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
