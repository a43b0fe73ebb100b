// `gate --version` and `gate version` print the package's version.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { VERSION } from '../../src/cli/version.ts';
import { root } from '../helpers.ts';
import { GATE, GATE_DAEMON, GATE_SERVER, run } from './helpers.ts';

describe('gate version', () => {
  it('matches package.json', async () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(VERSION, pkg.version);
    const r = await run(GATE, ['--version'], process.env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });
});

/** A Node.js older than the commands need, if this machine has one (Debian's is 20). */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    if (!existsSync(candidate) || candidate === process.execPath) continue;
    const r = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const [major, minor] = r.stdout.trim().split('.').map(Number);
    if (r.status === 0 && (major < 22 || (major === 22 && minor < 18))) return candidate;
  }
  return undefined;
}

describe('the commands on an older Node.js', () => {
  const old = oldNode();

  it('run again on the Node.js that npm install brought', { skip: old === undefined && 'no older Node.js on PATH' }, () => {
    for (const [bin, args, out] of [
      [GATE, ['--version'], /^0\.1\.0\n$/],
      [GATE_SERVER, ['--version'], /^gate-server \(gate-ts\)/],
      [GATE_DAEMON, ['--help'], /^Usage: gate-daemon/],
    ] as const) {
      const r = spawnSync(old!, [bin, ...args], { encoding: 'utf8' });
      assert.equal(r.stderr, '', bin);
      assert.equal(r.status, 0, bin);
      assert.match(r.stdout, out);
    }
  });

  it('say in one line which version they need when there is none', { skip: old === undefined && 'no older Node.js on PATH' }, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-old-node-'));
    try {
      mkdirSync(path.join(dir, 'bin'));
      for (const f of ['gate.js', 'launch.js']) cpSync(path.join(root, 'bin', f), path.join(dir, 'bin', f));
      const r = spawnSync(old!, [path.join(dir, 'bin', 'gate.js'), '--version'], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^gate: needs Node\.js 22\.18 or newer, this is v\d+\.\d+\.\d+: run "npm install" in .+ \(it brings one\) or install a newer Node\.js\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
