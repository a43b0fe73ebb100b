import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleFormatError, Reader, UnsupportedFeatureError, Writer, u32Length } from './binary.ts';

const r = (...b: number[]) => new Reader(Uint8Array.from(b));

function malformed(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModuleFormatError, `expected ModuleFormatError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('u32: values, padding, limits', () => {
  assert.equal(r(0x00).u32(), 0);
  assert.equal(r(0x7f).u32(), 127);
  assert.equal(r(0x80, 0x01).u32(), 128);
  assert.equal(r(0xe5, 0x8e, 0x26).u32(), 624485);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0x0f).u32(), 0xffffffff);
  assert.equal(r(0x80, 0x80, 0x80, 0x80, 0x00).u32(), 0, 'padded to 5 bytes is valid');
  assert.equal(r(0x83, 0x80, 0x00).u32(), 3);
  malformed(() => r(0xff, 0xff, 0xff, 0xff, 0x1f).u32(), /LEB128 integer too large at offset 0x0/);
  malformed(() => r(0xff, 0xff, 0xff, 0xff, 0x4f).u32(), /too large/);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x80, 0x00).u32(), /LEB128 integer too long at offset 0x0/);
  malformed(() => r(0x80).u32(), /unexpected end of module at offset 0x1/);
  malformed(() => r().u32(), /unexpected end/);
  const rr = r(0x01, 0x80, 0x01);
  assert.equal(rr.u32(), 1);
  assert.equal(rr.u32(), 128);
  assert.ok(rr.atEnd());
});

test('s32: sign extension and the unused bits of the last byte', () => {
  assert.equal(r(0x00).s32(), 0);
  assert.equal(r(0x7f).s32(), -1);
  assert.equal(r(0x3f).s32(), 63);
  assert.equal(r(0x40).s32(), -64);
  assert.equal(r(0xc0, 0x00).s32(), 64);
  assert.equal(r(0x80, 0x7f).s32(), -128);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0x07).s32(), 0x7fffffff);
  assert.equal(r(0x80, 0x80, 0x80, 0x80, 0x78).s32(), -0x80000000);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0x7f).s32(), -1, 'padded -1');
  malformed(() => r(0xff, 0xff, 0xff, 0xff, 0x0f).s32(), /too large/);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x70).s32(), /too large/);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x80, 0x00).s32(), /too long/);
  malformed(() => r(0xff).s32(), /unexpected end/);
});

test('s33: block types and type indices', () => {
  assert.equal(r(0x40).s33(), -64);
  assert.equal(r(0x7f).s33(), -1);
  assert.equal(r(0x05).s33(), 5);
  assert.equal(r(0x80, 0x01).s33(), 128);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0x0f).s33(), 2 ** 32 - 1);
  assert.equal(r(0x80, 0x80, 0x80, 0x80, 0x70).s33(), -(2 ** 32));
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x10).s33(), /too large/);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0x7f).s33(), -1);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x20).s33(), /too large/);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x80, 0x00).s33(), /too long/);
});

test('s64: full range, padding, limits', () => {
  assert.equal(r(0x7f).s64(), -1n);
  assert.equal(r(0x3f).s64(), 63n);
  assert.equal(r(0xc0, 0xbb, 0x78).s64(), -123456n);
  assert.equal(r(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00).s64(), 2n ** 63n - 1n);
  assert.equal(r(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f).s64(), -(2n ** 63n));
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01).s64(), /too large/);
  malformed(() => r(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7e).s64(), /too large/);
  malformed(() => r(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00).s64(), /too long/);
  const rr = r(0x80, 0x80);
  malformed(() => rr.skipS64(), /unexpected end/);
});

test('vector lengths and byte vectors are checked against the remaining bytes', () => {
  malformed(() => r(0xff, 0xff, 0xff, 0xff, 0x0f).count(), /vector length 4294967295 exceeds the remaining 0 bytes/);
  assert.equal(r(0x02, 1, 2).count(1), 2);
  malformed(() => r(0x02, 1, 2).count(2), /exceeds/);
  malformed(() => r(0x05, 1, 2).byteVector(), /length 5 out of bounds/);
  assert.equal(r(0x03, 0x61, 0x62, 0x63).name(), 'abc');
  assert.equal(new Reader(Uint8Array.from([0x04, 0xf0, 0x9f, 0x98, 0x80])).name(), '\u{1f600}');
  assert.equal(r(0x03, 0xef, 0xbb, 0xbf).name(), '\ufeff', 'a leading BOM is part of the name');
  assert.equal(r(0x04, 0xef, 0xbb, 0xbf, 0x61).name(), '\ufeffa');
  malformed(() => r(0x02, 0xc3, 0x28).name(), /malformed UTF-8/);
  malformed(() => r(0x03, 0xed, 0xa0, 0x80).name(), /malformed UTF-8/);
  malformed(() => r(0x01, 0x80).name(), /malformed UTF-8/);
  const bounded = new Reader(Uint8Array.from([1, 2, 3, 4]), 1, 2, 'section');
  assert.equal(bounded.u8(), 2);
  malformed(() => bounded.u8(), /unexpected end of section at offset 0x2/);
});

test('Writer encodes what Reader decodes', () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  const u = [0, 1, 127, 128, 16383, 16384, 0xffffffff, 0x7fffffff];
  const s = [0, -1, 63, -64, 64, -65, 0x7fffffff, -0x80000000];
  const l = [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 123456789012345n, -987654321n];
  for (let i = 0; i < 2000; i++) {
    u.push(rand());
    s.push(rand() | 0);
    l.push(BigInt.asIntN(64, (BigInt(rand()) << 32n) | BigInt(rand())));
  }
  const w = new Writer(4);
  for (const v of u) w.u32(v);
  for (const v of s) w.s32(v);
  for (const v of l) w.s64(v);
  const rd = new Reader(w.finish());
  for (const v of u) assert.equal(rd.u32(), v);
  for (const v of s) assert.equal(rd.s32(), v);
  for (const v of l) assert.equal(rd.s64(), v);
  assert.ok(rd.atEnd());
  for (const v of u) {
    const one = new Writer();
    one.u32(v);
    assert.equal(one.len, u32Length(v));
  }
});

test('Writer size prefixes are minimal and keep the content', () => {
  for (const size of [0, 1, 127, 128, 300, 16383, 16384, 70000]) {
    const w = new Writer(2);
    w.u8(0xaa);
    const m = w.beginSize();
    for (let i = 0; i < size; i++) w.u8(i & 0xff);
    w.endSize(m);
    w.u8(0xbb);
    const out = w.finish();
    const rd = new Reader(out, 1);
    assert.equal(rd.u32(), size);
    assert.equal(rd.pos, 1 + u32Length(size));
    for (let i = 0; i < size; i++) assert.equal(out[rd.pos + i], i & 0xff);
    assert.equal(out[out.length - 1], 0xbb);
    assert.equal(out.length, 2 + u32Length(size) + size);
  }
});

test('error classes carry a name, a code and the offset', () => {
  const e = new ModuleFormatError('unexpected end of section', 0x1a3);
  assert.equal(e.name, 'ModuleFormatError');
  assert.equal(e.code, 'ERR_WASM_MALFORMED');
  assert.equal(e.offset, 0x1a3);
  assert.equal(e.message, 'unexpected end of section at offset 0x1a3');
  assert.ok(e instanceof Error);
  const u = new UnsupportedFeatureError('threads', 'atomic instruction 0xfe 0x10', 0x2f1);
  assert.equal(u.name, 'UnsupportedFeatureError');
  assert.equal(u.code, 'ERR_WASM_UNSUPPORTED_FEATURE');
  assert.equal(u.feature, 'threads');
  assert.equal(u.message, 'module uses an unsupported WebAssembly feature: threads (atomic instruction 0xfe 0x10 at offset 0x2f1)');
});
