// identity, random and scope, exercised by C guest programs
// (guest/services/{identity,random,scope}.c) running in ProgramInstance.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readSnapshot } from '../../src/runtime/snapshot/read.ts';
import { createRandomService, identityService, programScope, scopeService, Registry } from '../../src/services/index.ts';
import { contextFor, migrate, runToEnd, start } from './helpers.ts';

function registry(bitsPerMinute = 7680 * 1000): Registry {
  return new Registry()
    .register(identityService)
    .register(scopeService)
    .register(createRandomService({ bitsPerMinute }));
}

const HALTED = { state: 'HALTED', cause: 'NORMAL', result: 0 };

describe('identity', () => {
  it('answers principal and instance ids, and empty replies to other calls', async () => {
    const ctx = contextFor('ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    const { status, log } = await runToEnd('identity', 'main', registry(), ctx);
    assert.deepEqual(status, HALTED);
    assert.equal(log, `principal=${ctx.principal}\ninstance=${ctx.instance}\nunknown=0\nempty=0\n`);
  });

  it('answers an empty principal to anonymous programs', async () => {
    const ctx = contextFor();
    const { log } = await runToEnd('identity', 'main', registry(), ctx);
    assert.match(log, /^principal=\ninstance=[0-9a-f-]{36}\n/);
  });

  it('a packet over 65536 bytes ends the run as an ABI violation', async () => {
    const { status, log } = await runToEnd('identity', 'oversize', registry());
    assert.equal(status.state, 'KILLED');
    assert.equal(status.cause, 'ABI_VIOLATION');
    assert.equal(log, '');
  });

  it('packets to an unavailable service are discarded', async () => {
    const ctx = contextFor();
    const { status, log } = await runToEnd('identity', 'unavailable', registry(), ctx);
    assert.deepEqual(status, HALTED);
    assert.equal(log, `dropped then instance=${ctx.instance}\n`);
  });
});

describe('random', () => {
  it('gives the requested number of bytes; zero or empty calls get empty replies', async () => {
    const { status, log } = await runToEnd('random', 'main', registry());
    assert.deepEqual(status, HALTED);
    const m = /^a=([0-9a-f]{32}) b=([0-9a-f]{32}) zero=0 empty=0\n$/.exec(log);
    assert.ok(m, log);
    assert.notEqual(m[1], m[2]);
  });

  it('is unavailable when not configured', async () => {
    const r = new Registry().register(identityService);
    const { status, log } = await runToEnd('random', 'main', r);
    assert.deepEqual(status, HALTED);
    assert.equal(log, 'random unavailable\n');
  });

  it('a call waiting for its rate limit survives snapshot and restore', async () => {
    // 8 bits per minute: 200 bytes would take 200 minutes.
    const r = await start('random', 'slow', registry(8));
    await r.logged('waiting\n');
    const { snapshot, restored } = await migrate(r, registry());
    const saved = (await readSnapshot(snapshot)).state.channel.services;
    assert.deepEqual(saved.map((s) => s.name), ['random']);
    assert.deepEqual([...saved[0].buffer], [1, 200]); // one pending call of 200 bytes
    assert.deepEqual(await restored.done, HALTED);
    assert.equal(restored.log(), 'got=200\n');
  });
});

describe('scope', () => {
  it('restricts the program scope and answers other calls empty', async () => {
    const r = await start('scope', 'main', registry(), contextFor('local', ['program:system']));
    assert.deepEqual(await r.done, HALTED);
    assert.equal(r.log(), 'restrict=2:0\nrestrict=2:0\nunknown=0\n');
  });

  it('an invalid token ends the run as an ABI violation', async () => {
    const { status, log } = await runToEnd('scope', 'invalid', registry());
    assert.equal(status.state, 'KILLED');
    assert.equal(status.cause, 'ABI_VIOLATION');
    assert.equal(log, '');
  });

  it('the restriction survives snapshot and restore', async () => {
    const r = await start('scope', 'hold', registry(), contextFor('local', ['program:system']));
    await r.logged('restricted\n');
    assert.deepEqual(programScope(r.context), ['program:system']);
    const ctx = contextFor('local', ['program:system']);
    const { snapshot, restored } = await migrate(r, registry(), ctx);
    const saved = (await readSnapshot(snapshot)).state.channel.services;
    assert.deepEqual(saved[0].name, 'scope');
    assert.deepEqual([...saved[0].buffer], [1, 14, ...Buffer.from('program:system')]);
    // Restored services are created before the program runs again.
    assert.deepEqual(programScope(ctx), ['program:system']);
    restored.program.kill();
    await restored.done;
  });
});
