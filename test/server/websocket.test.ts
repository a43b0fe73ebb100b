// End-to-end: websocket call and io (api.md §12) with Gate's message
// sequence: first JSON message, reply, binary data, input hint, final status
// message, close codes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { Client, Principal, sha256, startTestServer, wasm, type TestServer } from './helpers.ts';

interface Message {
  text?: string;
  binary?: Buffer;
}

/** A websocket with its messages recorded in order, and its close code and reason. */
class Session {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data: Buffer, binary: boolean) => {
      this.messages.push(binary ? { binary: data } : { text: data.toString() });
      for (const w of this.waiters.splice(0)) w();
    });
    this.ws.on('error', () => {});
  }

  /** Wait until the recorded messages satisfy a condition. */
  async until(test: (messages: Message[]) => boolean): Promise<Message[]> {
    while (!test(this.messages)) {
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), this.closed]);
      if (this.ws.readyState === WebSocket.CLOSED && !test(this.messages)) throw new Error(`closed before condition: ${JSON.stringify(this.messages)}`);
    }
    return this.messages;
  }

  output(): string {
    return this.messages.filter((m) => m.binary).map((m) => m.binary!.toString()).join('');
  }

  texts(): unknown[] {
    return this.messages.filter((m) => m.text !== undefined).map((m) => JSON.parse(m.text!));
  }
}

describe('gate-server websockets', () => {
  let ts: TestServer;
  let alice: Client;
  let wsBase: string;
  const hello = wasm('examples/hello.wasm');
  const helloHash = sha256(hello);

  before(async () => {
    ts = await startTestServer();
    alice = new Client(ts, new Principal());
    wsBase = ts.url.replace(/^http/, 'ws');
  });
  after(() => ts.close());

  it('calls an uploaded module anonymously', async () => {
    const s = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call&function=greet`);
    await s.opened;
    s.ws.send(JSON.stringify({ content_type: 'application/wasm', content_length: hello.byteLength }));
    s.ws.send(hello);
    const closed = await s.closed;
    assert.equal(closed.code, 1000);
    assert.equal(s.messages[0].text, '{}\n');
    assert.equal(s.output(), 'hello, world\n');
    const last = s.messages[s.messages.length - 1];
    assert.equal(last.text, '{\n\t"status": {\n\t\t"state": "TERMINATED"\n\t}\n}\n');
  });

  it('calls with pin as a principal: location and instance in the reply', async () => {
    const s = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call&action=pin&function=greet`);
    await s.opened;
    s.ws.send(JSON.stringify({ authorization: alice.principal!.bearer(ts.audience), content_type: 'application/wasm', content_length: hello.byteLength }));
    s.ws.send(hello);
    assert.equal((await s.closed).code, 1000);
    const reply = JSON.parse(s.messages[0].text!) as { location: string; instance: string };
    assert.equal(reply.location, `/gate-0/module/sha256/${helloHash}`);
    assert.match(reply.instance, /^[0-9a-f-]{36}$/);
    assert.equal(s.output(), 'hello, world\n');
    // Now pinned: an extant call needs no upload.
    const again = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call&function=greet`);
    await again.opened;
    again.ws.send(JSON.stringify({ authorization: alice.principal!.bearer(ts.audience) }));
    assert.equal((await again.closed).code, 1000);
    assert.equal(again.output(), 'hello, world\n');
  });

  it('streams input and sends the input hint once', async () => {
    const echo = await alice.upload(wasm('examples/echo.wasm'));
    const s = new Session(`${wsBase}/gate-0/module/sha256/${echo}?action=call&function=echo`);
    await s.opened;
    s.ws.send(JSON.stringify({ authorization: alice.principal!.bearer(ts.audience) }));
    await s.until((m) => m.some((x) => x.text?.includes('"input": true')));
    s.ws.send(Buffer.from('one '));
    await s.until(() => s.output() === 'one ');
    s.ws.send(Buffer.from('two'));
    await s.until(() => s.output() === 'one two');
    const hints = s.texts().filter((t) => (t as { input?: boolean }).input);
    assert.deepEqual(hints, [{ status: { state: 'RUNNING' }, input: true }]);
    s.ws.close();
    await s.closed;
  });

  it('reports errors as close frames', async () => {
    const anon = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call&function=greet`);
    await anon.opened;
    anon.ws.send('{}');
    assert.deepEqual(await anon.closed, { code: 1008, reason: 'anonymous access not supported' });

    const badType = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call`);
    await badType.opened;
    badType.ws.send(JSON.stringify({ content_type: 'text/plain' }));
    assert.deepEqual(await badType.closed, { code: 1008, reason: 'unsupported content type' });

    const big = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call`);
    await big.opened;
    big.ws.send(JSON.stringify({ pad: 'x'.repeat(5000) }));
    assert.equal((await big.closed).code, 1009);

    const expired = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call`);
    await expired.opened;
    expired.ws.send(JSON.stringify({ authorization: `Bearer ${alice.principal!.token({ exp: 1 })}` }));
    assert.deepEqual(await expired.closed, { code: 1008, reason: 'token has expired' });

    const textModule = new Session(`${wsBase}/gate-0/module/sha256/${sha256(Buffer.from('abc'))}?action=call`);
    await textModule.opened;
    textModule.ws.send(JSON.stringify({ content_type: 'application/wasm', content_length: 3 }));
    textModule.ws.send('abc');
    assert.equal((await textModule.closed).code, 1003);

    const garbage = Buffer.from('not wasm');
    const bad = new Session(`${wsBase}/gate-0/module/sha256/${sha256(garbage)}?action=call`);
    await bad.opened;
    bad.ws.send(JSON.stringify({ content_type: 'application/wasm', content_length: garbage.byteLength }));
    bad.ws.send(garbage);
    assert.equal((await bad.closed).code, 1008);

    const unparseable = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call`);
    await unparseable.opened;
    unparseable.ws.send('{nope');
    assert.equal((await unparseable.closed).code, 1006);
  });

  it('refuses bad handshakes with HTTP errors', async () => {
    const fn = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=call&function=bad%20name`);
    await assert.rejects(fn.opened, /HTTP 400/);
    const key = new Session(`${wsBase}/gate-0/module/sha256/XYZ?action=call`);
    await assert.rejects(key.opened, /HTTP 404/);
    const action = new Session(`${wsBase}/gate-0/module/sha256/${helloHash}?action=launch`);
    await assert.rejects(action.opened, /HTTP 501/);
  });

  it('connects io to a running instance and reports its status', async () => {
    const hash = await alice.upload(hello);
    const id = await alice.launch(hash, '&function=multi');
    const s = new Session(`${wsBase}/gate-0/instance/${id}?action=io`);
    await s.opened;
    s.ws.send(JSON.stringify({ authorization: alice.principal!.bearer(ts.audience) }));
    assert.equal((await s.closed).code, 1000);
    assert.deepEqual(s.texts()[0], { connected: true });
    assert.equal(s.output(), 'hello, world\n');
    assert.deepEqual(s.texts().at(-1), { status: { state: 'RUNNING' } });
    // The instance keeps running after io ends.
    assert.deepEqual(await alice.status(id), { state: 'RUNNING' });

    const noAuth = new Session(`${wsBase}/gate-0/instance/${id}?action=io`);
    await noAuth.opened;
    noAuth.ws.send('{}');
    assert.deepEqual(await noAuth.closed, { code: 1008, reason: 'invalid_request' });

    const other = new Session(`${wsBase}/gate-0/instance/${id}?action=io`);
    await other.opened;
    other.ws.send(JSON.stringify({ authorization: new Principal().bearer(ts.audience) }));
    assert.deepEqual(await other.closed, { code: 1008, reason: 'instance not found' });

    await alice.post(`/gate-0/instance/${id}?action=kill&action=wait`);
    const stopped = new Session(`${wsBase}/gate-0/instance/${id}?action=io`);
    await stopped.opened;
    stopped.ws.send(JSON.stringify({ authorization: alice.principal!.bearer(ts.audience) }));
    assert.deepEqual(await stopped.closed, { code: 1008, reason: 'not connected' });
    assert.deepEqual(stopped.texts(), [{ connected: false }]);
  });
});
