// End-to-end: instances (api.md §8–§9): launch, io, wait, kill, suspend,
// resume, snapshot, delete, update, status, list, debug; ids and ownership.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client, ioLines, Principal, readUntil, sha256, startTestServer, wasm, type TestServer } from './helpers.ts';

describe('gate-server instances', () => {
  let ts: TestServer;
  let alice: Client;
  let bob: Client;
  let hello: string;
  let counter: string;

  before(async () => {
    ts = await startTestServer();
    alice = new Client(ts, new Principal());
    bob = new Client(ts, new Principal());
    hello = await alice.upload(wasm('examples/hello.wasm'));
    counter = await alice.upload(wasm('examples/counter.wasm'));
  });
  after(() => ts.close());

  /** Open an io connection and read until pattern; then hang up. */
  const ioRead = (id: string, pattern: RegExp) => ioLines(alice, id, pattern);

  it('launches with a fresh UUIDv4 and reports status, list and info', async () => {
    const r = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&function=multi&instance-tag=demo`);
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    const id = r.headers['gate-instance'] as string;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const info = JSON.parse((await alice.post(`/gate-0/instance/${id}`)).text);
    assert.deepEqual(info, { instance: id, module: hello, status: { state: 'RUNNING' }, tags: ['demo'] });
    const list = JSON.parse((await alice.post('/gate-0/instance/')).text) as { instances: { instance: string }[] };
    assert.ok(list.instances.some((i) => i.instance === id));
    assert.deepEqual(JSON.parse((await bob.post('/gate-0/instance/')).text), {});
    const kill = await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
    assert.equal(kill.headers['gate-status'], '{"state":"KILLED"}');
  });

  it('connects io over HTTP, many times, with the status trailer', async () => {
    const id = await alice.launch(hello, '&function=multi');
    for (let i = 0; i < 2; i++) {
      const r = await alice.post(`/gate-0/instance/${id}?action=io`, { headers: { Te: 'trailers' }, body: '' });
      assert.equal(r.status, 200);
      assert.equal(r.text, 'hello, world\n');
      assert.equal(r.trailers['gate-status'], '{"state":"RUNNING"}');
    }
    await alice.post(`/gate-0/instance/${id}?action=kill`);
    assert.deepEqual(await alice.wait(id), { state: 'KILLED' });
    const stopped = await alice.post(`/gate-0/instance/${id}?action=io`);
    assert.equal(stopped.status, 409);
    assert.equal(stopped.text, '');
  });

  it('halts a persistent instance whose entry returns, and resumes it with a function', async () => {
    const id = await alice.launch(hello, '&function=repl');
    const io = await alice.post(`/gate-0/instance/${id}?action=io`, { body: 'x' });
    assert.equal(io.text, 'hello, world\n');
    assert.deepEqual(await alice.wait(id), { state: 'HALTED' });
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=delete`)).status, 200);
    assert.equal((await alice.post(`/gate-0/instance/${id}`)).status, 404);

    // A program without entry function halts at once; resume runs an export on that state.
    const start = await alice.upload(wasm('wat/start.wasm'));
    const halted = await alice.launch(start);
    assert.deepEqual(await alice.wait(halted), { state: 'HALTED' });
    const noFn = await alice.post(`/gate-0/instance/${halted}?action=resume`);
    assert.equal(noFn.status, 409);
    assert.equal(noFn.text, 'function must be specified when resuming halted instance\n');
    assert.equal((await alice.post(`/gate-0/instance/${halted}?action=resume&function=after`)).status, 200);
    assert.deepEqual(await alice.wait(halted), { state: 'HALTED' });
    assert.equal((await alice.post(`/gate-0/instance/${halted}?action=delete`)).status, 200);
    await alice.post(`/gate-0/module/sha256/${start}?action=unpin`);
  });

  it('suspends, resumes where it stopped, and refuses invalid transitions', async () => {
    const id = await alice.launch(counter, '&function=count');
    const first = await ioRead(id, /1\n/);
    assert.ok(first.startsWith('0\n1\n'));
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=delete`)).text, 'instance must not be running\n');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume`)).text, 'instance must be suspended or halted\n');
    const s = await alice.post(`/gate-0/instance/${id}?action=suspend&action=wait`);
    assert.equal(s.headers['gate-status'], '{"state":"SUSPENDED"}');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume&function=count`)).text, 'function specified for suspended instance\n');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume`)).status, 200);
    const next = await ioRead(id, /\n\d+\n/);
    const n = Number(next.split('\n')[0]);
    assert.ok(n >= 2, `counting continued: ${next}`);
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
    const again = await alice.post(`/gate-0/instance/${id}?action=resume`);
    assert.equal(again.status, 409);
  });

  it('snapshots into a known module that continues elsewhere', async () => {
    const id = await alice.launch(counter, '&function=count');
    await ioRead(id, /2\n/);
    const snap = await alice.post(`/gate-0/instance/${id}?action=snapshot&module-tag=checkpoint`);
    assert.equal(snap.status, 201);
    const location = snap.headers.location as string;
    assert.match(location, /^\/gate-0\/module\/sha256\/[0-9a-f]{64}$/);
    const snapHash = location.split('/').pop()!;
    // The instance itself goes on running after the snapshot.
    assert.deepEqual(await alice.status(id), { state: 'RUNNING' });
    const info = JSON.parse((await alice.post(`/gate-0/module/sha256/${snapHash}`)).text);
    assert.deepEqual(info, { module: snapHash, tags: ['checkpoint'] });
    const download = await alice.request(location);
    assert.equal(sha256(new Uint8Array(download.body)), snapHash);

    const clone = await alice.launch(snapHash);
    const text = await ioRead(clone, /\n\d+\n/);
    assert.ok(Number(text.split('\n')[0]) >= 3, `the clone continues counting: ${text}`);
    const fn = await alice.post(`/gate-0/module/sha256/${snapHash}?action=launch&function=count`);
    assert.equal(fn.status, 404);
    assert.equal(fn.text, 'entry function may not be specified for suspended program\n');
    for (const i of [id, clone]) await alice.post(`/gate-0/instance/${i}?action=kill&action=wait`);
  });

  it('relaunches a final snapshot as it ended: TERMINATED with result 1', async () => {
    const exit1 = await alice.upload(wasm('examples/exit1.wasm'));
    const id = await alice.launch(exit1, '&function=exit1');
    const ended = await alice.post(`/gate-0/instance/${id}?action=wait`);
    assert.equal(ended.headers['gate-status'], '{"state":"TERMINATED","result":1}');
    const snap = await alice.post(`/gate-0/instance/${id}?action=snapshot`);
    assert.equal(snap.status, 201);
    const again = await alice.launch((snap.headers.location as string).split('/').pop()!);
    assert.deepEqual(await alice.status(again), { state: 'TERMINATED', result: 1 });
    const waited = await alice.post(`/gate-0/instance/${again}?action=wait`);
    assert.equal(waited.headers['gate-status'], '{"state":"TERMINATED","result":1}');
    for (const i of [id, again]) assert.equal((await alice.post(`/gate-0/instance/${i}?action=delete`)).status, 200);
  });

  it('launch&suspend without a function of a module without _start: HALTED, resumable only with a function', async () => {
    const r = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend`);
    assert.equal(r.status, 200);
    const id = r.headers['gate-instance'] as string;
    assert.deepEqual(await alice.status(id), { state: 'HALTED' });
    const bare = await alice.post(`/gate-0/instance/${id}?action=resume`);
    assert.equal(bare.status, 409);
    assert.equal(bare.text, 'function must be specified when resuming halted instance\n');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=resume&function=multi`)).status, 200);
    const io = await alice.post(`/gate-0/instance/${id}?action=io`, { body: '' });
    assert.equal(io.text, 'hello, world\n');
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
    await alice.post(`/gate-0/instance/${id}?action=delete`);
  });

  it('launches suspended, and with a caller-chosen id (409 when taken)', async () => {
    const id = randomUUID();
    const r = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend&instance=${id}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['gate-instance'], id);
    // hello has no _start: with no function there is nothing to resume (Gate's HALTED).
    assert.deepEqual(await alice.status(id), { state: 'HALTED' });
    const dup = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&instance=${id}`);
    assert.equal(dup.status, 409);
    assert.equal(dup.text, 'duplicate instance id\n');
    const fn = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend&function=greet`);
    assert.equal(fn.text, 'function cannot be specified for suspended instance\n');
    // Another principal may use the same id.
    await bob.upload(wasm('examples/hello.wasm'));
    assert.equal((await bob.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend&instance=${id}`)).status, 200);
  });

  it("hides other principals' instances", async () => {
    const id = await alice.launch(hello, '&function=multi');
    for (const q of ['', '?action=wait', '?action=kill', '?action=io', '?action=delete', '?action=snapshot', '?action=suspend']) {
      const r = await bob.post(`/gate-0/instance/${id}${q}`);
      assert.equal(r.status, 404, q);
      assert.equal(r.text, 'instance not found\n', q);
    }
    assert.deepEqual(await alice.status(id), { state: 'RUNNING' });
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
  });

  it('updates tags and persistence (also the stock client\'s "transient" key)', async () => {
    const id = await alice.launch(hello, '&function=multi');
    const r = await alice.post(`/gate-0/instance/${id}?action=update`, {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ transient: true, tags: ['web', 'v2'] }),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text).tags, ['web', 'v2']);
    const bad = await alice.post(`/gate-0/instance/${id}?action=update`, { headers: { 'Content-Type': 'application/json' }, body: '{"color":1}' });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'content parse error\n');
    // The content is parsed before the instance is looked up (Gate's order).
    const unknown = await alice.post(`/gate-0/instance/${crypto.randomUUID()}?action=update`, { headers: { 'Content-Type': 'application/json' }, body: '{"persist":' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.text, 'content parse error\n');
    assert.equal((await alice.post(`/gate-0/instance/${id}?action=update`, { body: '{}' })).status, 415);
    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
  });

  it('makes a call instance persistent by suspending it from another request', async () => {
    const req = http.request(`${ts.url}/gate-0/module/sha256/${counter}?action=call&function=count`, { method: 'POST', headers: alice.auth() });
    req.flushHeaders();
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    const id = res.headers['gate-instance'] as string;
    await readUntil(res, /1\n/);
    const list = JSON.parse((await alice.post('/gate-0/instance/')).text) as { instances: { instance: string; transient?: boolean }[] };
    assert.equal(list.instances.find((i) => i.instance === id)?.transient, true);
    const s = await alice.post(`/gate-0/instance/${id}?action=suspend&action=wait`);
    assert.equal(s.headers['gate-status'], '{"state":"SUSPENDED"}');
    req.destroy();
    const info = JSON.parse((await alice.post(`/gate-0/instance/${id}`)).text);
    assert.equal(info.transient, undefined);
    assert.deepEqual(info.status, { state: 'SUSPENDED' });
  });

  it('snapshots a running call instance without ending the call', async () => {
    const req = http.request(`${ts.url}/gate-0/module/sha256/${counter}?action=call&function=count`, { method: 'POST', headers: { ...alice.auth(), Te: 'trailers' } });
    req.flushHeaders();
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    const id = res.headers['gate-instance'] as string;
    await readUntil(res, /1\n/);
    const snap = await alice.post(`/gate-0/instance/${id}?action=snapshot`);
    assert.equal(snap.status, 201);
    assert.match(snap.headers.location as string, /^\/gate-0\/module\/sha256\/[0-9a-f]{64}$/);
    // The call goes on counting after the snapshot.
    await readUntil(res, /\n3\n/);
    req.destroy();
  });

  it('refuses an oversize update body', async () => {
    const id = await alice.launch(hello, '&action=suspend');
    const r = await alice.post(`/gate-0/instance/${id}?action=update`, {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ tags: ['x'.repeat(70000)] }),
    });
    assert.equal(r.status, 413);
    const tags = await alice.post(`/gate-0/instance/${id}?action=update`, {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ tags: ['x'.repeat(300)] }),
    });
    assert.equal(tags.status, 400);
    assert.equal(tags.text, 'tag is too long (limit 255 bytes)\n');
    await alice.post(`/gate-0/instance/${id}?action=delete`);
  });

  it('reads memory and globals of a stopped instance with the debug action', async () => {
    const id = await alice.launch(counter, '&function=count');
    await ioRead(id, /0\n/);
    const running = await alice.post(`/gate-0/instance/${id}?action=debug`, { headers: { 'Content-Type': 'application/json' }, body: '{"op":"READ_GLOBALS"}' });
    assert.equal(running.status, 409);
    assert.equal(running.text, 'instance must be stopped\n');
    await alice.post(`/gate-0/instance/${id}?action=suspend&action=wait`);
    const debug = (body: unknown) =>
      alice.post(`/gate-0/instance/${id}?action=debug`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const g = JSON.parse((await debug({ op: 'READ_GLOBALS' })).text) as { module: string; status: unknown; data: string };
    assert.equal(g.module, `sha256/${counter}`);
    assert.deepEqual(g.status, { state: 'SUSPENDED' });
    const globals = Buffer.from(g.data, 'base64');
    assert.ok(globals.byteLength > 0 && globals.byteLength % 8 === 0);
    // The C stack pointer is a global pointing into linear memory.
    const sp = Number(globals.readBigUInt64LE(0));
    const m = JSON.parse((await debug({ op: 'READ_MEMORY', addr: '0', size: 16 })).text) as { data: string };
    assert.equal(Buffer.from(m.data, 'base64').byteLength, 16);
    const whole = Buffer.from((JSON.parse((await debug({ op: 5 })).text) as { data: string }).data, 'base64');
    assert.equal(whole.byteLength % 65536, 0);
    assert.ok(sp > 0 && sp <= whole.byteLength, `stack pointer ${sp} within ${whole.byteLength} bytes`);
    assert.equal((await debug({ op: 'READ_MEMORY', addr: whole.byteLength, size: 1 })).status, 400);
    assert.equal((await debug({ op: 99 })).status, 501);
    assert.equal((await debug({ op: 'READ_STACK' })).status, 501);
    assert.equal((await debug({ bogus: 1 })).status, 400);
    const get = JSON.parse((await debug({})).text);
    assert.deepEqual(Object.keys(get).sort(), ['module', 'status']);
    await alice.post(`/gate-0/instance/${id}?action=delete`);
  });
});

describe('gate-server per-principal limits', () => {
  let ts: TestServer;
  let alice: Client;
  let hello: string;

  before(async () => {
    ts = await startTestServer({
      principal: { maxmodules: 2, maxinstances: 3, maxprocs: 2, maxmemorysize: 4 * 1024 * 1024, totalmemorysize: 1024 * 1024 * 1024, timelimit: 1 },
      access: { anonymousprocs: 1 },
    });
    alice = new Client(ts, new Principal());
    hello = await alice.upload(wasm('examples/hello.wasm'));
  });
  after(() => ts.close());

  it('limits pinned modules', async () => {
    await alice.upload(wasm('examples/echo.wasm'));
    const r = await alice.request(`/gate-0/module/sha256/${sha256(wasm('examples/exit1.wasm'))}?action=pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/wasm' },
      body: wasm('examples/exit1.wasm'),
    });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'pinned module limit exceeded (principal.maxmodules = 2)\n');
  });

  it('limits running instances and instance records', async () => {
    const a = await alice.launch(hello, '&function=multi');
    const b = await alice.launch(hello, '&function=multi');
    const c = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&function=multi`);
    assert.equal(c.status, 400);
    assert.equal(c.text, 'running instance limit exceeded (principal.maxprocs = 2)\n');
    const d = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend`);
    assert.equal(d.status, 200);
    const e = await alice.post(`/gate-0/module/sha256/${hello}?action=launch&action=suspend`);
    assert.equal(e.text, 'instance limit exceeded (principal.maxinstances = 3)\n');
    for (const id of [a, b, d.headers['gate-instance'] as string]) {
      await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
      await alice.post(`/gate-0/instance/${id}?action=delete`);
    }
  });

  it('limits anonymous calls running at once, server-wide', async () => {
    const counter = wasm('examples/counter.wasm');
    const url = `${ts.url}/gate-0/module/sha256/${sha256(counter)}?action=call&function=count`;
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': 'application/wasm', 'Content-Length': counter.byteLength } });
    req.end(counter);
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    await readUntil(res, /0\n/);
    const second = await new Client(ts).post(url.slice(ts.url.length), { headers: { 'Content-Type': 'application/wasm' }, body: counter });
    assert.equal(second.status, 503);
    assert.equal(second.text, 'anonymous instance limit exceeded (access.anonymousprocs = 1)\n');
    req.destroy();
  });

  it('limits run time', async () => {
    const loop = wasm('wat/loop.wasm');
    const r = await alice.post(`/gate-0/module/sha256/${sha256(loop)}?action=call&function=spin`, {
      headers: { 'Content-Type': 'application/wasm', Te: 'trailers' },
      body: loop,
    });
    const status = JSON.parse(r.trailers['gate-status']!);
    assert.equal(status.state, 'KILLED');
    assert.equal(status.error, 'run time limit exceeded (principal.timelimit = 1 s)');
  });

  it('limits memory', async () => {
    const ts2 = await startTestServer({ principal: { maxmemorysize: 65536 } });
    try {
      const bytes = wasm('examples/hello.wasm');
      const r = await new Client(ts2).post(`/gate-0/module/sha256/${sha256(bytes)}?action=call&function=greet`, {
        headers: { 'Content-Type': 'application/wasm' },
        body: bytes,
      });
      assert.equal(r.status, 400);
      assert.match(r.text, /memory/);
    } finally {
      await ts2.close();
    }
  });
});
