// gate with a server address: signed tokens from the user's SSH key against
// a real gate-server process; push and pull between it and the daemon.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { everyCommand } from './scenario.ts';
import { example, gate, GATE, makeHome, startServer, type ServerProcess, type TestHome } from './helpers.ts';

function hasScript(): boolean {
  return spawnSync('script', ['--version']).status === 0;
}

/** Run a shell command with a terminal for its standard streams (script(1)); resolves with what it printed. */
function onTerminal(home: TestHome, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', command, '/dev/null'], { env: home.env, maxBuffer: 1 << 24 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

/** A valid module of about `size` bytes: one memory and a data segment. */
function bigModule(size: number): Buffer {
  const leb = (n: number) => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  const section = (id: number, body: Buffer) => Buffer.concat([Buffer.from([id, ...leb(body.length)]), body]);
  const memory = section(5, Buffer.from([1, 0, Math.ceil(size / 65536) + 1]));
  const data = section(11, Buffer.concat([Buffer.from([1, 0, 0x41, 0, 0x0b, ...leb(size)]), Buffer.alloc(size, 0x5a)]));
  return Buffer.concat([Buffer.from('\0asm\x01\0\0\0', 'latin1'), memory, data]);
}

describe('gate with a server address', () => {
  let home: TestHome;
  let server: ServerProcess;
  before(async () => {
    home = makeHome();
    server = await startServer(home, 'server');
  });
  after(async () => {
    await server.stop();
    await home.cleanup();
  });

  it('runs every command', async (t) => {
    await everyCommand(t, home, [server.url]);
  });

  it('prints the server identity with version', async () => {
    const r = await gate(home, [server.url, 'version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\nServer: http:\/\/127\.0\.0\.1:\d+ uuid [0-9a-f-]{36}\n$/);
  });

  it('calls anonymously and unpinned without a key (identityfile empty or no such file); other commands need one', async () => {
    const r = await gate(home, ['-o', 'identityfile=', server.url, 'call', example('hello.wasm'), 'greet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello, world\n');
    const absent = path.join(home.dir, 'no-such-key');
    const noFile = await gate(home, ['-o', `identityfile=${absent}`, server.url, 'call', example('hello.wasm'), 'greet']);
    assert.equal(noFile.code, 0, noFile.stderr);
    assert.equal(noFile.stdout, 'hello, world\n');
    const listed = await gate(home, ['-o', `identityfile=${absent}`, server.url, 'modules']);
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /no such key file/);
    const list = await gate(home, ['-o', 'identityfile=', server.url, 'instances']);
    assert.equal(list.code, 1);
    assert.equal(list.stderr, 'gate: missing authentication credentials\n');
  });

  it('runs and pins modules named by a source path (/ipfs/CID)', async () => {
    // An IPFS node's HTTP API, as far as the server uses it: cat of one object.
    const wasm = readFileSync(example('hello.wasm'));
    const ipfs = http.createServer((req, res) => {
      if (req.method === 'POST' && req.url?.startsWith('/api/v0/cat?arg=/ipfs/QmHello&')) res.writeHead(200, { 'X-Content-Length': String(wasm.length) }).end(wasm);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => ipfs.listen(0, '127.0.0.1', resolve));
    const sourced = await startServer(home, 'sourced', ['-o', `source.ipfs.addr=http://127.0.0.1:${(ipfs.address() as AddressInfo).port}`]);
    try {
      const call = await gate(home, [sourced.url, 'call', '/ipfs/QmHello', 'greet']);
      assert.equal(call.code, 0, call.stderr);
      assert.equal(call.stdout, 'hello, world\n');
      const pin = await gate(home, [sourced.url, 'pin', '/ipfs/QmHello', 'from-ipfs']);
      assert.equal(pin.code, 0, pin.stderr);
      const id = createHash('sha256').update(wasm).digest('hex');
      assert.equal(pin.stdout, `${id}\n`);
      assert.equal((await gate(home, [sourced.url, 'show', id])).stdout, '[from-ipfs]\n');
      const missing = await gate(home, [sourced.url, 'call', '/ipfs/QmNothing']);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, 'gate: module not found\n');
    } finally {
      await sourced.stop();
      ipfs.close();
    }
  });

  it('keeps principals apart: another key sees none of the modules', async () => {
    const wasm = example('hello.wasm');
    const id = createHash('sha256').update(readFileSync(wasm)).digest('hex');
    assert.equal((await gate(home, [server.url, 'import', wasm])).code, 0);
    const other = makeHome();
    try {
      const r = await gate(other, [server.url, 'show', id]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'gate: module not found\n');
    } finally {
      await other.cleanup();
    }
  });

  it('shows a progress bar on a terminal for large uploads and downloads', { skip: !hasScript() && 'no script(1) for a terminal' }, async () => {
    const file = path.join(home.dir, 'big.wasm');
    writeFileSync(file, bigModule(1536 * 1024));
    const shell = (args: string) => `'${process.execPath}' '${GATE}' ${args}`;
    const imported = await onTerminal(home, shell(`${server.url} import '${file}'`));
    assert.match(imported, /upload \[#{30}\] 100% 1\.5 MiB\/1\.5 MiB/);
    const id = createHash('sha256').update(readFileSync(file)).digest('hex');
    assert.ok(imported.includes(id));
    const exported = await onTerminal(home, shell(`${server.url} export ${id} '${file}.out'`));
    assert.match(exported, /download \[#{30}\] 100% 1\.5 MiB\/1\.5 MiB/);
    assert.deepEqual(readFileSync(`${file}.out`), readFileSync(file));
    // Not on a terminal: no bar.
    const piped = await gate(home, [server.url, 'export', id, `${file}.out2`]);
    assert.equal(piped.stderr, '');
  });

  it('pushes a module from the daemon to the server and pulls one back', async () => {
    const wasm = example('echo.wasm');
    const id = createHash('sha256').update(readFileSync(wasm)).digest('hex');
    assert.equal((await gate(home, ['import', wasm])).code, 0);
    // The scenario's call pinned it on the server; forget it there so the push is what brings it back.
    assert.equal((await gate(home, [server.url, 'unpin', id])).code, 0);
    assert.ok(!(await gate(home, [server.url, 'modules'])).stdout.includes(id));
    const push = await gate(home, ['push', server.url, id]);
    assert.equal(push.code, 0, push.stderr);
    assert.ok((await gate(home, [server.url, 'modules'])).stdout.includes(id));

    const counter = example('counter.wasm');
    const counterId = createHash('sha256').update(readFileSync(counter)).digest('hex');
    assert.equal((await gate(home, [server.url, 'import', counter, 'from-server'])).code, 0);
    await gate(home, ['unpin', counterId]);
    const pull = await gate(home, ['pull', server.url, counterId]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.ok((await gate(home, ['modules'])).stdout.includes(counterId));
  });
});
