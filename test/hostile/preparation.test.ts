// Modules that are cheap to send and expensive to prepare (issue item 3),
// uploaded anonymously to the gate-server command: refused before any work
// when they pass a bound, stopped at the preparation deadline or memory cap
// otherwise, while other callers' new modules are prepared meanwhile and no
// memory stays behind.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { anonymousCall, CoTenant, GateServer, within } from './harness.ts';
import { deepStack, manyCalls } from './modules.ts';

const MIB = 1024 * 1024;

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('preparation attacks against gate-server', () => {
  it('bounds, a deadline and a memory cap stop them, fairly, and leave no memory behind', async () => {
    const server = await GateServer.start({
      config: { 'runtime.preparers': 2, 'runtime.preparetimeout': 4, 'runtime.preparememory': 300 },
    });
    try {
      const tenant = await CoTenant.launch(server);
      const before = rss(server.process.pid!);

      // Past a bound: refused before any work, naming the limit.
      const deep = await within('the refusal of a deep stack', anonymousCall(server, deepStack(5000), 'run'));
      assert.equal(deep.status, 400);
      assert.equal(deep.text, 'function 1 holds more than 1024 values on its operand stack; the limit is 1024\n');

      // Within the bounds but slow (about 30 s each): four at once, then a memory hog.
      const slow = [1, 2, 3, 4].map(() => anonymousCall(server, deepStack(1000, 8), 'run'));
      const hog = anonymousCall(server, manyCalls(1_000_000, 4), 'run');
      // The attacker holds one preparer at most: the other serves the co-tenant's new module.
      await tenant.assertHealthy();

      for (const reply of await within('the slow preparations to be stopped', Promise.all(slow), 60_000)) {
        assert.equal(reply.status, 400);
        assert.equal(reply.text, 'module preparation took longer than 4 s (runtime.preparetimeout = 4)\n');
      }
      const hogged = await within('the memory hog to be stopped', hog, 60_000);
      assert.equal(hogged.status, 400);
      assert.equal(hogged.text, 'module preparation used more than 300 MiB of memory (runtime.preparememory = 300)\n');

      await tenant.assertHealthy();

      // Nothing grew: the server itself, nor a preparer or worker left behind.
      assert.ok(rss(server.process.pid!) - before < 100 * MIB, `server grew by ${Math.round((rss(server.process.pid!) - before) / MIB)} MiB`);
      for (const child of children(server.process.pid!)) assert.ok(rss(child) < 400 * MIB, `process ${child}: ${Math.round(rss(child) / MIB)} MiB`);
    } finally {
      await server.assertStopsPromptly();
    }
  });
});
