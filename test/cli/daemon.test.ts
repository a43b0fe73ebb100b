// gate without an address: the local daemon, started on demand, stopped with
// gate-daemon --stop, its instances kept across restarts.

import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { everyCommand } from './scenario.ts';
import { collect, example, gate, GATE, GATE_DAEMON, makeHome, run, spawnGate, waitForOutput, type TestHome } from './helpers.ts';

describe('gate with the local daemon', () => {
  let home: TestHome;
  before(() => {
    home = makeHome();
  });
  after(async () => {
    await home.cleanup();
  });

  it('starts the daemon on demand with a private socket', async () => {
    const runtime = path.join(home.dir, 'run', 'gate');
    assert.equal(existsSync(path.join(runtime, 'daemon.sock')), false);
    const r = await gate(home, ['instances']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(statSync(path.join(runtime, 'daemon.sock')).mode & 0o777, 0o600);
    assert.equal(statSync(runtime).mode & 0o777, 0o700);
    const status = await run(GATE_DAEMON, ['--status'], home.env);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /^gate-daemon is running: pid \d+/);
    // A second daemon refuses to start while the first runs (Gate's exit status 3).
    const second = await run(GATE_DAEMON, [], home.env);
    assert.equal(second.code, 3);
    assert.match(second.stderr, /already running/);
  });

  it('runs every command', async (t) => {
    await everyCommand(t, home, []);
  });

  it('keeps instances across gate-daemon --stop and an on-demand restart', async () => {
    const id = (await gate(home, ['launch', example('counter.wasm'), 'count', 'kept'])).stdout.trim();
    const stop = await run(GATE_DAEMON, ['--stop'], home.env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(existsSync(path.join(home.dir, 'run', 'gate', 'daemon.sock')), false);
    assert.equal((await run(GATE_DAEMON, ['--status'], home.env)).code, 1);
    const status = await gate(home, ['status', id]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^(RUNNING|SUSPENDED) \[kept\]\n$/);
    await gate(home, ['kill', id]);
    assert.equal((await gate(home, ['delete', id])).code, 0);
  });

  it('suspends a call on Ctrl-\\ (SIGQUIT), keeping the instance', async () => {
    const call = spawnGate(home, ['call', example('counter.wasm'), 'count']);
    const out = collect(call.stdout);
    const err = collect(call.stderr);
    await waitForOutput(call.stdout, /^0\n1\n/, out);
    const exited = once(call, 'exit');
    call.kill('SIGQUIT');
    const [code] = await exited;
    assert.equal(code, 0);
    const m = /^([0-9a-f-]{36}) SUSPENDED\n$/.exec(err.text);
    assert.ok(m, err.text);
    assert.equal((await gate(home, ['status', m[1]])).stdout, 'SUSPENDED []\n');
    assert.equal((await gate(home, ['delete', m[1]])).code, 0);
  });

  it('call -p keeps the instance; -D also shows the debug log', async () => {
    const p = await gate(home, ['call', '-p', example('hello.wasm'), 'greet']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout, 'hello, world\n');
    const m = /^([0-9a-f-]{36}) HALTED with result 0\n$/.exec(p.stderr);
    assert.ok(m, p.stderr);
    assert.equal((await gate(home, ['status', m[1]])).stdout, 'HALTED with result 0 []\n');
    assert.equal((await gate(home, ['delete', m[1]])).code, 0);
    const d = await gate(home, ['call', '-D', example('hello.wasm'), 'fail']);
    assert.equal(d.code, 1);
    const lines = d.stderr.split('\n');
    assert.equal(lines[0], 'exiting with return value 1');
    assert.match(lines[1], /^[0-9a-f-]{36} TERMINATED with result 1$/);
    assert.equal((await gate(home, ['delete', lines[1].split(' ')[0]])).code, 0);
    const remote = await gate(home, ['http://127.0.0.1:9', 'call', '-p', example('hello.wasm'), 'greet']);
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /-p and -D are for calls through the local daemon only/);
  });

  it('input that arrives after the program has ended does not cut off its output or status', async () => {
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const call = spawnGate(home, ['call', example('hello.wasm'), 'greet']);
        const out = collect(call.stdout);
        const err = collect(call.stderr);
        await waitForOutput(call.stdout, /^hello, world\n$/, out);
        // gate may have exited already (the call is over): then nobody reads this.
        call.stdin.on('error', () => {});
        call.stdin.end('typed too late\n');
        const [code] = await once(call, 'exit');
        assert.equal(err.text, '');
        assert.equal(code, 0);
      }),
    );
  });

  it('colours only on a terminal (or when forced)', async () => {
    const id = (await gate(home, ['launch', example('counter.wasm'), 'count'])).stdout.trim();
    assert.equal((await gate(home, ['suspend', id])).stdout, 'SUSPENDED\n');
    const plain = await run(GATE, ['instances'], { ...home.env, NO_COLOR: '' });
    assert.ok(plain.stdout.includes(id));
    assert.ok(!plain.stdout.includes('\x1b['));
    const forced = await run(GATE, ['instances'], { ...home.env, NO_COLOR: '', FORCE_COLOR: '1' });
    assert.ok(forced.stdout.includes('\x1b[33mSUSPENDED'), forced.stdout);
    assert.equal((await gate(home, ['delete', id])).code, 0);
  });

  it('shows the debug log with call --debug, through the daemon and in this process', async () => {
    for (const where of [[], ['--in-process']]) {
      const quiet = await gate(home, ['call', ...where, example('hello.wasm'), 'fail']);
      assert.equal(quiet.code, 1);
      assert.equal(quiet.stderr, '');
      const debug = await gate(home, ['call', '--debug', ...where, example('hello.wasm'), 'fail']);
      assert.equal(debug.code, 1);
      assert.equal(debug.stderr, 'exiting with return value 1\n', where.join(' '));
    }
    const r = await gate(home, ['call', '--in-process', example('hello.wasm'), 'greet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello, world\n');
  });
});

describe('gate-daemon start race', () => {
  it('several gate calls racing a fresh daemon all run to the end', async () => {
    const home = makeHome();
    try {
      for (let round = 0; round < 3; round++) {
        const calls = await Promise.all([1, 2, 3, 4].map(() => gate(home, ['call', example('hello.wasm'), 'twice'])));
        for (const r of calls) {
          assert.equal(r.stderr, '', `round ${round}`);
          assert.equal(r.code, 0);
          assert.equal(r.stdout, 'hello, world\nhello, world\n');
        }
        const stop = await run(GATE_DAEMON, ['--stop'], home.env);
        assert.equal(stop.code, 0, stop.stderr);
      }
    } finally {
      await home.cleanup();
    }
  });
});
