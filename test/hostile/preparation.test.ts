// Modules that are cheap to send and expensive to prepare (issue item 3),
// uploaded anonymously to the gate-server command: refused before any work
// when they pass a bound, stopped at the preparation deadline or memory cap
// otherwise, while other callers' new modules are prepared meanwhile and no
// memory stays behind.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anonymousCall, childProcesses, CoTenant, GateServer, residentBytes, within } from './harness.ts';
import { deepStack, manyCalls } from './modules.ts';

const MIB = 1024 * 1024;

describe('preparation attacks against gate-server', () => {
  it('bounds refuse some at once, a deadline stops the rest, fairly, and nothing stays behind', async () => {
    const server = await GateServer.start({ config: { 'runtime.preparers': 2, 'runtime.preparetimeout': 2 } });
    try {
      const tenant = await CoTenant.launch(server);
      const before = residentBytes(server.process.pid!);

      // Past a bound: refused before any work, naming the limit. (The module: 5,000 call results
      // in a function, which took the old instrumentation 470 s; 16 functions of 1,000, which would make
      // the rewrite write 120 MB.)
      const deep = await within('the refusal of a deep stack', anonymousCall(server, deepStack(5000), 'run'));
      assert.equal(deep.status, 400);
      assert.equal(deep.text, 'function 1 holds more than 1024 values on its operand stack; the limit is 1024\n');
      const many = await within('the refusal of many deep stacks', anonymousCall(server, deepStack(1000, 16), 'run'));
      assert.equal(many.status, 400);
      assert.match(many.text, /^module holds more than \d+ operand stack values at its calls, loops and bulk operations \(by function \d+\); the limit is 65536 plus one per byte of the module\n$/);

      // Within the bounds but slow: 2,000,000 call sites (several seconds each), four at once.
      const slow = [1, 2, 3, 4].map(() => anonymousCall(server, manyCalls(1_000_000, 2), 'run'));
      // The attacker holds one preparer at most: the other serves the co-tenant's new module.
      await tenant.assertHealthy();
      for (const reply of await within('the slow preparations to be stopped', Promise.all(slow), 90_000)) {
        assert.equal(reply.status, 400);
        assert.equal(reply.text, 'module preparation took longer than 2 s (runtime.preparetimeout = 2)\n');
      }
      await tenant.assertHealthy();

      // Nothing grew: the server itself, nor a preparer or worker left behind.
      const grown = residentBytes(server.process.pid!) - before;
      assert.ok(grown < 100 * MIB, `server grew by ${Math.round(grown / MIB)} MiB`);
      for (const child of childProcesses(server.process.pid!)) {
        assert.ok(residentBytes(child) < 400 * MIB, `process ${child}: ${Math.round(residentBytes(child) / MIB)} MiB`);
      }
    } finally {
      await server.assertStopsPromptly();
    }
  });

  it('a memory cap stops a preparation that grows, and the preparer goes with its memory', async () => {
    const server = await GateServer.start({ config: { 'runtime.preparememory': 300 } });
    try {
      const tenant = await CoTenant.launch(server);
      const hog = anonymousCall(server, manyCalls(1_000_000, 4), 'run');
      await tenant.assertHealthy();
      const hogged = await within('the memory hog to be stopped', hog, 90_000);
      assert.equal(hogged.status, 400);
      assert.equal(hogged.text, 'module preparation used more than 300 MiB of memory (runtime.preparememory = 300)\n');
      for (const child of childProcesses(server.process.pid!)) {
        assert.ok(residentBytes(child) < 300 * MIB, `process ${child}: ${Math.round(residentBytes(child) / MIB)} MiB`);
      }
      await tenant.assertHealthy();
    } finally {
      await server.assertStopsPromptly();
    }
  });
});
