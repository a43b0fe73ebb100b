import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbiViolation } from '../runtime/instance/errors.ts';
import { ByteReader, ByteWriter, SavedStateError, VARINT_MAX, decodeVarint, encodeVarint, varintSize } from './varint.ts';

test('varint encoding', () => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [1, [1]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16384, [0x80, 0x80, 0x01]],
    [VARINT_MAX, [0xff, 0xff, 0xff, 0xff, 0x07]],
  ];
  for (const [value, bytes] of cases) {
    assert.deepEqual([...encodeVarint(value)], bytes, `encode ${value}`);
    assert.equal(varintSize(value), bytes.length);
    assert.deepEqual(decodeVarint(new Uint8Array(bytes)), { value, next: bytes.length });
  }
});

test('varint range is 0 … 2^31−1', () => {
  assert.throws(() => encodeVarint(-1), RangeError);
  assert.throws(() => encodeVarint(VARINT_MAX + 1), RangeError);
  assert.throws(() => encodeVarint(1.5), RangeError);
  assert.throws(() => decodeVarint(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x08])), {
    name: 'SavedStateError',
    message: 'varint value out of range',
  });
});

test('varint decoding errors are saved-state ABI violations', () => {
  for (const bad of [[], [0x80], [0xff, 0xff], Array(10).fill(0x80), [...Array(9).fill(0x80), 0x02]]) {
    assert.throws(
      () => decodeVarint(new Uint8Array(bad)),
      (e: unknown) => e instanceof SavedStateError && e instanceof AbiViolation && /end of data/.test(e.message),
    );
  }
  // Non-minimal encodings are accepted, like Go's reader does.
  assert.deepEqual(decodeVarint(new Uint8Array([0x81, 0x80, 0x00])), { value: 1, next: 3 });
});

test('byte writer and reader', () => {
  const w = new ByteWriter();
  for (let i = 0; i < 100; i++) w.varint(i * 1000).bytes(new Uint8Array([i, i]));
  const r = new ByteReader(w.finish());
  for (let i = 0; i < 100; i++) {
    assert.equal(r.varint(), i * 1000);
    assert.deepEqual([...r.bytes(2)], [i, i]);
  }
  assert.equal(r.remaining, 0);
  assert.throws(() => r.bytes(1), { name: 'SavedStateError', message: 'unexpected end of serialized state' });
});
