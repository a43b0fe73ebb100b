// Snapshots written by Gate itself (its testdata: suspend.cpp stopped on
// amd64 and on arm64, with Gate's native-independent portable stack) resume
// through every command a user has: `gate call --in-process`, the daemon and
// gate-server. The program prints "suspend.cpp running: N" to its debug log
// a few times a second; a snapshot taken here after it ran on continues
// counting where it left off.
//
// The files are Gate's, not ours: set GATE_TESTDATA to Gate's testdata
// directory (or check Gate out beside this repository); without them the
// tests are skipped.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { root } from '../helpers.ts';
import { gate, makeHome, startServer, type ServerProcess, type TestHome } from './helpers.ts';

const testdata = process.env.GATE_TESTDATA ?? path.join(root, '..', 'gate', 'testdata');
const haveTestdata = existsSync(path.join(testdata, 'snapshot.amd64.wasm.gz'));

/** The counts a run printed to its debug log. */
function counts(debug: string): number[] {
  return [...debug.matchAll(/suspend\.cpp running: (\d+)/g)].map((m) => Number(m[1]));
}

describe("Gate's snapshots through the commands", { skip: haveTestdata ? false : `Gate's testdata not found at ${testdata} (set GATE_TESTDATA)` }, () => {
  let home: TestHome;
  let server: ServerProcess;
  const files: Record<string, string> = {};
  before(async () => {
    home = makeHome();
    server = await startServer(home, 'server');
    for (const arch of ['amd64', 'arm64']) {
      files[arch] = path.join(home.dir, `snapshot.${arch}.wasm`);
      writeFileSync(files[arch], gunzipSync(readFileSync(path.join(testdata, `snapshot.${arch}.wasm.gz`))));
    }
  });
  after(async () => {
    await server.stop();
    await home.cleanup();
  });

  /** Runs a snapshot file in this process for a moment; the counts it printed. */
  async function runBriefly(file: string): Promise<number[]> {
    const r = await gate(home, ['call', '--in-process', '-d', '--time-limit', '1.5', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /KILLED; error: time limit exceeded/);
    return counts(r.stderr);
  }

  /** Launch on a host (daemon or server), let it count, snapshot it there, and continue the snapshot here. */
  async function continueElsewhere(address: string[], file: string): Promise<void> {
    const launch = await gate(home, [...address, 'launch', file]);
    assert.equal(launch.code, 0, launch.stderr);
    const id = launch.stdout.trim();
    await sleep(1500);
    assert.equal((await gate(home, [...address, 'status', id])).stdout, 'RUNNING []\n');
    const snap = await gate(home, [...address, 'snapshot', id]);
    assert.equal(snap.code, 0, snap.stderr);
    const module = snap.stdout.trim();
    const out = path.join(home.dir, `${module}.wasm`);
    assert.equal((await gate(home, [...address, 'export', module, out])).code, 0);
    // It ran on after the snapshot was taken (snapshot leaves it running).
    assert.equal((await gate(home, [...address, 'status', id])).stdout, 'RUNNING []\n');
    const kill = await gate(home, [...address, 'kill', id]);
    assert.equal(kill.code, 0, kill.stderr);
    assert.equal((await gate(home, [...address, 'wait', id])).stdout, 'KILLED\n');
    // Gate's file starts at 1; one and a half seconds on the host counted on.
    const later = await runBriefly(out);
    assert.ok(later.length > 0 && later[0] > 2, `counts after the host ran: ${later.join(',')}`);
    for (let i = 1; i < later.length; i++) assert.equal(later[i], later[i - 1] + 1);
  }

  for (const arch of ['amd64', 'arm64']) {
    it(`${arch}: gate call --in-process continues it`, async () => {
      const c = await runBriefly(files[arch]);
      assert.ok(c.length >= 2, c.join(','));
      assert.deepEqual(
        c,
        c.map((_, i) => i + 1),
      );
    });

    it(`${arch}: the daemon runs it and snapshots it again`, async () => {
      await continueElsewhere([], files[arch]);
    });

    it(`${arch}: gate-server runs it and snapshots it again`, async () => {
      await continueElsewhere([server.url], files[arch]);
    });
  }
});
