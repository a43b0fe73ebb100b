// How fast the commands start, as a user at a shell meets them: `gate
// --version` against a bare `node -e ''`, a `gate call` of hello.wasm through
// a daemon that is already running, and the same call --in-process. Each
// is a fresh process (with Node's compile cache warm, as after the first run).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { interleave, median, note, spread, target, type BenchOptions, type Row } from './lib.ts';

const GROUP = 'startup';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const gate = path.join(root, 'bin', 'gate.js');
const hello = path.join(root, 'guest', 'examples', 'hello.wasm');

export async function run({ quick, progress }: BenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-startup-'));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: path.join(dir, 'state'), XDG_CONFIG_HOME: path.join(dir, 'config') };
  delete env.GATE_DAEMON_DIR;
  delete env.GATE_DAEMON_DATA;
  const node = (...args: string[]) => {
    const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr.toString().trim()}`);
  };
  try {
    progress('startup: starting the daemon and warming the compile cache');
    node(gate, 'call', hello, 'greet');
    node(gate, 'call', '--in-process', hello, 'greet');
    const rounds = quick ? 3 : 21;
    progress(`startup: ${rounds} rounds`);
    const samples = await interleave(
      {
        node: () => node('-e', ''),
        version: () => node(gate, '--version'),
        call: () => node(gate, 'call', hello, 'greet'),
        inProcess: () => node(gate, 'call', '--in-process', hello, 'greet'),
      },
      rounds,
    );
    const base = median(samples.node.wall);
    const version = median(samples.version.wall);
    const call = median(samples.call.wall);
    return [
      { group: GROUP, name: "bare node -e ''", value: base, unit: 'ms', note: spread(samples.node.wall) },
      { group: GROUP, name: 'gate --version', value: version, unit: 'ms', note: spread(samples.version.wall) },
      { group: GROUP, name: 'gate --version / bare node', value: version / base, unit: 'x', note: target(version / base, '≤', 3, 'x') },
      { group: GROUP, name: 'gate call hello.wasm (warm daemon)', value: call, unit: 'ms', note: note(spread(samples.call.wall), target(call, '≤', 100, 'ms')) },
      { group: GROUP, name: 'gate call --in-process hello.wasm', value: median(samples.inProcess.wall), unit: 'ms', note: spread(samples.inProcess.wall) },
    ];
  } finally {
    spawnSync(process.execPath, [path.join(root, 'bin', 'gate-daemon.js'), '--stop'], { env, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}
