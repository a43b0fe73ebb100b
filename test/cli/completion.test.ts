// completions/gate.bash, run by bash against the real gate and daemon:
// command names, instance and module ids, wasm files, debug subcommands.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { root } from '../helpers.ts';
import { example, gate, GATE, makeHome, type TestHome } from './helpers.ts';

const SCRIPT = path.join(root, 'completions', 'gate.bash');

function complete(home: TestHome, words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `source '${SCRIPT}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _gate; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], {
    cwd: root,
    env: { ...home.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

describe('bash completion', () => {
  let home: TestHome;
  let instance: string;
  before(async () => {
    home = makeHome();
    instance = (await gate(home, ['launch', '--suspend', example('counter.wasm')])).stdout.trim();
    assert.match(instance, /^[0-9a-f-]{36}$/);
  });
  after(async () => {
    await home.cleanup();
  });

  it('completes commands, also after global options and an address', () => {
    assert.deepEqual(complete(home, [GATE, 'sus']), ['suspend']);
    assert.deepEqual(complete(home, [GATE, '--json', 'http://127.0.0.1:9', 'st']), ['status']);
    assert.deepEqual(complete(home, [GATE, '-o', 'pin=false', 'imp']), ['import']);
  });

  it('completes instance ids from gate instances', () => {
    assert.deepEqual(complete(home, [GATE, 'status', '']), [instance]);
    assert.deepEqual(complete(home, [GATE, 'debug', instance, 'd']), ['dumptext']);
  });

  it('completes module ids and wasm files', () => {
    const modules = complete(home, [GATE, 'show', '']);
    assert.equal(modules.length, 1);
    assert.match(modules[0], /^[0-9a-f]{64}$/);
    assert.deepEqual(complete(home, [GATE, 'call', 'guest/examples/hel']), ['guest/examples/hello.wasm']);
    assert.deepEqual(complete(home, [GATE, 'launch', '--suspend', modules[0].slice(0, 6)]), [modules[0]]);
  });

  it('completes command options', () => {
    assert.deepEqual(complete(home, [GATE, 'launch', '--su']), ['--suspend']);
  });
});
