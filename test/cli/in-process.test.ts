// `gate call --in-process`: the program runs in the gate process itself.
// Ctrl-\ suspends it into a snapshot file that the same command continues,
// --json reports the end, --time-limit is wall-clock time.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { collect, example, gate, GATE, makeHome, waitForOutput, type TestHome } from './helpers.ts';

describe('gate call --in-process', () => {
  let home: TestHome;
  before(() => {
    home = makeHome();
  });
  after(async () => {
    await home.cleanup();
  });

  it('suspends on Ctrl-\\ into a snapshot file, which the same command continues', async () => {
    const call = spawn(process.execPath, [GATE, 'call', '--in-process', example('counter.wasm'), 'count'], { cwd: home.dir, env: home.env });
    const out = collect(call.stdout);
    const err = collect(call.stderr);
    await waitForOutput(call.stdout, /^0\n1\n2\n/, out);
    const exited = once(call, 'exit');
    call.kill('SIGQUIT');
    assert.equal((await exited)[0], 0, err.text);
    const m = /^([0-9a-f-]{36}) SUSPENDED\ngate: snapshot written to (\S+\.wasm); continue it with: gate call --in-process \S+\n$/.exec(err.text);
    assert.ok(m, err.text);
    const file = path.join(home.dir, m[2]);
    assert.ok(existsSync(file));
    const last = Number(out.text.trim().split('\n').pop());

    const resumed = spawn(process.execPath, [GATE, 'call', '--in-process', file], { cwd: home.dir, env: home.env });
    const more = collect(resumed.stdout);
    await waitForOutput(resumed.stdout, /\n.*\n/, more);
    resumed.kill('SIGTERM');
    await once(resumed, 'exit');
    assert.equal(Number(more.text.split('\n')[0]), last + 1, `${out.text} then ${more.text}`);
  });

  it('--json prints the instance and status after the output', async () => {
    const r = await gate(home, ['--json', 'call', '--in-process', example('hello.wasm'), 'greet']);
    assert.equal(r.code, 0, r.stderr);
    const [output, json] = [r.stdout.slice(0, r.stdout.indexOf('{')), r.stdout.slice(r.stdout.indexOf('{'))];
    assert.equal(output, 'hello, world\n');
    const report = JSON.parse(json) as { instance: string; status: { state: string } };
    assert.match(report.instance, /^[0-9a-f-]{36}$/);
    assert.deepEqual(report.status, { state: 'TERMINATED' });
  });

  it('--time-limit is wall-clock time: a program that mostly waits is killed when it runs out', async () => {
    const r = await gate(home, ['call', '--in-process', '--time-limit', '0.5', example('counter.wasm'), 'count']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'gate: KILLED; error: time limit exceeded (--time-limit 0.5 s)\n');
    assert.ok(r.stdout.startsWith('0\n'), r.stdout);
  });

  it('refuses empty and non-wasm files in words', async () => {
    const empty = path.join(home.dir, 'empty.wasm');
    const text = path.join(home.dir, 'text.wasm');
    writeFileSync(empty, '');
    writeFileSync(text, 'hello');
    const a = await gate(home, ['call', '--in-process', empty]);
    assert.equal(a.code, 1);
    assert.equal(a.stderr, `gate: ${empty}: the file is empty: not a WebAssembly module\n`);
    const b = await gate(home, ['call', '--in-process', text]);
    assert.equal(b.code, 1);
    assert.equal(b.stderr, `gate: ${text}: not a WebAssembly module\n`);
  });
});
