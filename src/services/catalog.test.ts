import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADER_SIZE, packetDomain, packetIndex, packetSize } from '../runtime/packet/packet.ts';
import type { ServiceContext, ServiceFactory } from '../runtime/service/service.ts';
import { catalogJson, createCatalog, goJsonString } from './catalog.ts';
import { runRegistry } from './index.ts';
import { OriginConnector } from './origin.ts';
import { Registry } from './registry.ts';
import { Harness, TEST_CODE, testContext } from './servicetest.ts';

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

/** A registry laid out like Gate's default server: a server-wide part and a per-run child. */
function defaultRegistry(): Registry {
  const server = new Registry().register(fake('scope')).register(fake('random')).register(fake('identity'));
  return runRegistry(server, new OriginConnector());
}

function catalogReply(h: Harness, content: string | Uint8Array = 'json'): Uint8Array {
  h.call(content);
  assert.equal(h.sent.length, 1);
  const p = h.sent.pop()!;
  assert.equal(packetDomain(p), 0);
  assert.equal(packetIndex(p), 0);
  assert.equal(packetSize(p), p.length);
  return p.subarray(HEADER_SIZE);
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

test('catalog of a default server is byte-exact', () => {
  const r = defaultRegistry();
  const h = new Harness(r.lookup('catalog', testContext)!);
  const entry = (name: string): string => `\t\t{\n\t\t\t"name": "${name}",\n\t\t\t"revision": "0"\n\t\t}`;
  const expected =
    '{\n\t"services": [\n' +
    ['catalog', 'identity', 'origin', 'random', 'scope'].map(entry).join(',\n') +
    '\n\t]\n}\n';
  const got = text(catalogReply(h));
  assert.equal(got, expected);
  assert.ok(got.startsWith('{\n\t"services": [\n\t\t{\n\t\t\t"name": "catalog",\n\t\t\t"revision": "0"\n\t\t},\n\t\t{\n\t\t\t"name": "identity",'));
  assert.ok(got.endsWith('\t\t}\n\t]\n}\n'));
  assert.deepEqual(JSON.parse(got).services.length, 5);
  assert.deepEqual(h.shutdown(), new Uint8Array(0));
  assert.deepEqual(h.aborts, []);
});

test('catalog with no discoverable services', () => {
  const r = new Registry();
  const catalog = createCatalog(r);
  r.register(catalog, () => false);
  const h = new Harness(catalog);
  assert.equal(text(catalogReply(h)), '{\n\t"services": []\n}\n');
});

test('catalog lists what the calling context can discover', () => {
  const r = new Registry();
  const catalog = createCatalog(r);
  r.register(catalog);
  r.register(fake('internal/test', '10.23.456-7'), (ctx) => ctx.principal !== undefined);
  const anon = new Harness(catalog);
  assert.deepEqual(JSON.parse(text(catalogReply(anon))).services, [{ name: 'catalog', revision: '0' }]);
  const owned: ServiceContext = { ...testContext, principal: 'local' };
  const h = new Harness(catalog, null, owned);
  assert.deepEqual(JSON.parse(text(catalogReply(h))).services, [
    { name: 'catalog', revision: '0' },
    { name: 'internal/test', revision: '10.23.456-7' },
  ]);
});

test('other calls get an empty reply; info is ignored', () => {
  const r = defaultRegistry();
  const h = new Harness(r.lookup('catalog', testContext)!);
  for (const c of ['', 'jso', 'json\n', 'JSON', 'jsonx', new Uint8Array([0])]) {
    assert.equal(catalogReply(h, c).length, 0);
  }
  h.info(new TextEncoder().encode('json'));
  assert.equal(h.sent.length, 0);
});

test('JSON strings are escaped like Go encoding/json', () => {
  assert.equal(goJsonString('a<b>&c'), '"a\\u003cb\\u003e\\u0026c"');
  assert.equal(goJsonString('\u2028\u2029'), '"\\u2028\\u2029"');
  assert.equal(goJsonString('"\\\b\f\n\r\t\x01\x1f\x7f'), '"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"');
  assert.equal(goJsonString('é\u{1f600}'), '"é\u{1f600}"');
  assert.equal(goJsonString('\ud800'), '"\ufffd"');
  const r = new Registry();
  const catalog = createCatalog(r);
  r.register(catalog).register(fake('net.example.svc', '<1&2>'));
  const h = new Harness(catalog);
  assert.match(text(catalogReply(h)), /"revision": "\\u003c1\\u00262\\u003e"\n/);
});

test('a catalog too large for one packet gets an empty reply', () => {
  const r = new Registry();
  const catalog = createCatalog(r);
  r.register(catalog);
  for (let i = 0; i < 300; i++) r.register(fake(`svc${i}`.padEnd(120, 'x'), 'r'.repeat(120)));
  const h = new Harness(catalog);
  assert.equal(catalogReply(h).length, 0);

  // Exactly at the limit it still fits.
  const doc = new TextEncoder().encode(catalogJson(r.list(testContext)));
  const fits = catalog.create(testContext, { maxSendSize: HEADER_SIZE + doc.length, code: TEST_CODE }, null);
  const tooSmall = catalog.create(testContext, { maxSendSize: HEADER_SIZE + doc.length - 1, code: TEST_CODE }, null);
  const call = new Uint8Array([12, 0, 0, 0, TEST_CODE, 0, 0, 0, ...new TextEncoder().encode('json')]);
  assert.equal((fits.handle(call) as Uint8Array).length, HEADER_SIZE + doc.length);
  assert.equal((tooSmall.handle(call) as Uint8Array).length, HEADER_SIZE);
});
