import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceContext, ServiceFactory } from '../runtime/service/service.ts';
import { DuplicateServiceError, Registry, compareUtf8, validateService } from './registry.ts';
import { testContext } from './servicetest.ts';

function fake(name: string, revision = '0'): ServiceFactory {
  return {
    name,
    revision,
    streams: false,
    create() {
      return { start() {}, handle() {}, shutdown: () => new Uint8Array(0) };
    },
  };
}

const withPrincipal: ServiceContext = { ...testContext, principal: 'local' };

test('register refuses a duplicate name, registerOrReplace replaces', () => {
  const r = new Registry();
  const a = fake('svc');
  const b = fake('svc', '2');
  r.register(a);
  assert.throws(() => r.register(b), (e: unknown) => e instanceof DuplicateServiceError && e.message === 'service "svc" already registered');
  assert.equal(r.lookup('svc', testContext), a);
  r.registerOrReplace(b);
  assert.equal(r.lookup('svc', testContext), b);
});

test('names and revisions are validated', () => {
  validateService('example.net/svc', '4365.984532');
  validateService('ñame_1', '123-acme+∑');
  validateService('x'.repeat(127), 'r');
  assert.throws(() => validateService('', '0'), /name string is empty/);
  assert.throws(() => validateService('a', ''), /revision string is empty/);
  assert.throws(() => validateService('x'.repeat(128), '0'), /name string is too long/);
  assert.throws(() => validateService('é'.repeat(64), '0'), /too long/); // 128 UTF-8 bytes
  assert.throws(() => validateService('a b', '0'), /name string contains invalid characters/);
  assert.throws(() => validateService('a+b', '0'), /name string contains invalid characters/); // symbol
  assert.throws(() => validateService('a', 'x y'), /revision string contains invalid characters/);
  assert.throws(() => validateService('a\ud800', '0'), /invalid characters/);
  assert.throws(() => new Registry().register(fake('bad name')), /invalid characters/);
});

test('a child shadows its parent without changing it', () => {
  const parent = new Registry().register(fake('a')).register(fake('b'));
  const child = parent.child();
  const b2 = fake('b', '2');
  child.register(b2); // shadowing is not a duplicate
  child.register(fake('c'));
  assert.equal(child.lookup('b', testContext), b2);
  assert.equal(parent.lookup('b', testContext)?.revision, '0');
  assert.equal(parent.lookup('c', testContext), undefined);
  assert.deepEqual(child.list(testContext), [
    { name: 'a', revision: '0' },
    { name: 'b', revision: '2' },
    { name: 'c', revision: '0' },
  ]);
});

test('availability depends on the context; an unavailable shadow hides the parent', () => {
  const parent = new Registry().register(fake('p')).register(fake('x'));
  const child = parent.child();
  child.register(fake('needs-principal'), (ctx) => ctx.principal !== undefined);
  child.register(fake('x', '9'), () => false);

  assert.equal(child.lookup('needs-principal', testContext), undefined);
  assert.ok(child.lookup('needs-principal', withPrincipal));
  assert.equal(child.lookup('x', withPrincipal), undefined);
  assert.deepEqual(child.list(testContext).map((s) => s.name), ['p']);
  assert.deepEqual(child.list(withPrincipal).map((s) => s.name), ['needs-principal', 'p']);

  const bound = child.bind(withPrincipal);
  assert.ok(bound.lookup('needs-principal'));
  assert.equal(bound.lookup('x'), undefined);
  assert.equal(bound.lookup('unknown'), undefined);
  assert.ok(child.get('x')); // registered, just not discoverable
});

test('listing is sorted by UTF-8 bytes, not UTF-16 units', () => {
  const r = new Registry();
  for (const n of ['\u{10000}', '\uff71', 'b', 'B', 'a/b', 'a']) r.register(fake(n));
  assert.deepEqual(r.list(testContext).map((s) => s.name), ['B', 'a', 'a/b', 'b', '\uff71', '\u{10000}']);
  assert.ok(compareUtf8('\uff71', '\u{10000}') < 0);
  assert.ok('\uff71' > '\u{10000}'); // what plain string comparison would say
});
