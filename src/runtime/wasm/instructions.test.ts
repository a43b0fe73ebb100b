import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleFormatError, UnsupportedFeatureError } from './binary.ts';
import { Feature } from './features.ts';
import { CodeReader, Op } from './instructions.ts';
import { parseModule } from './module.ts';
import { body, functype, section, u32, vec, wasm } from './testing.ts';

/** Decode a byte sequence into one record per instruction. */
function decode(bytes: number[]): CodeReader[] {
  const src = Uint8Array.from(bytes);
  const r = new CodeReader(src);
  const out: CodeReader[] = [];
  while (!r.atEnd()) {
    r.next();
    out.push(Object.assign(Object.create(CodeReader.prototype), r) as CodeReader);
  }
  return out;
}

test('control instructions and their immediates', () => {
  const [block, loop, ifi, br, brTable, call, ci, rc, rci] = decode([
    0x02, 0x40, // block
    0x03, 0x7f, // loop (result i32)
    0x04, 0x85, 0x01, // if (type 133)
    0x0c, 0x02, // br 2
    0x0e, 0x02, 0x00, 0x01, 0x03, // br_table 0 1 3
    0x10, 0xe5, 0x8e, 0x26, // call 624485
    0x11, 0x03, 0x02, // call_indirect type 3 table 2
    0x12, 0x07, // return_call 7
    0x13, 0x01, 0x00, // return_call_indirect type 1 table 0
  ]);
  assert.deepEqual([block.op, block.index, block.start, block.pos], [Op.Block, -64, 0, 2]);
  assert.deepEqual([loop.op, loop.index], [Op.Loop, -1]);
  assert.deepEqual([ifi.op, ifi.index, ifi.pos], [Op.If, 133, 7]);
  assert.deepEqual([br.op, br.index], [Op.Br, 2]);
  assert.deepEqual([brTable.op, brTable.index, brTable.index2, brTable.immStart, brTable.pos], [Op.BrTable, 2, 3, 10, 14]);
  assert.deepEqual([call.op, call.index, call.immStart, call.pos], [Op.Call, 624485, 15, 18]);
  assert.deepEqual([ci.op, ci.index, ci.index2], [Op.CallIndirect, 3, 2]);
  assert.deepEqual([rc.op, rc.index], [Op.ReturnCall, 7]);
  assert.deepEqual([rci.op, rci.index, rci.index2], [Op.ReturnCallIndirect, 1, 0]);
  const r = new CodeReader(Uint8Array.from([0x02, 0x40, 0x03, 0x7b, 0x04, 0x05, 0x12, 0, 0x11, 0, 1]));
  while (!r.atEnd()) r.next();
  assert.equal(r.features, Feature.Simd | Feature.MultiValue | Feature.TailCall | Feature.ReferenceTypes);
});

test('variables, constants, references, select', () => {
  const [lg, gs, i32, i64, f32, f64, rn, rf, sel, tg] = decode([
    0x20, 0x05, // local.get 5
    0x24, 0x80, 0x01, // global.set 128
    0x41, 0x80, 0x7f, // i32.const -128
    0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, // i64.const min
    0x43, 0, 0, 0x80, 0x3f, // f32.const 1
    0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // f64.const 1
    0xd0, 0x6f, // ref.null extern
    0xd2, 0x09, // ref.func 9
    0x1c, 0x01, 0x7e, // select (result i64)
    0x25, 0x02, // table.get 2
  ]);
  assert.deepEqual([lg.op, lg.index], [Op.LocalGet, 5]);
  assert.deepEqual([gs.op, gs.index], [Op.GlobalSet, 128]);
  assert.deepEqual([i32.op, i32.value, i32.pos - i32.start], [Op.I32Const, -128, 3]);
  assert.deepEqual([i64.op, i64.pos - i64.start], [Op.I64Const, 11]);
  assert.deepEqual([f32.op, f32.pos - f32.start, f64.pos - f64.start], [Op.F32Const, 5, 9]);
  assert.deepEqual([rn.op, rn.index], [Op.RefNull, 0x6f]);
  assert.deepEqual([rf.op, rf.index, rf.immStart], [Op.RefFunc, 9, rf.start + 1]);
  assert.deepEqual([sel.op, sel.index, sel.index2], [Op.SelectT, 1, 0x7e]);
  assert.deepEqual([tg.op, tg.index], [Op.TableGet, 2]);
});

test('memory instructions, multi-memory memargs and 0xFC operations', () => {
  const [load, load2, store, size, grow, init, drop, copy, fill, tinit, tcopy, tgrow, sat] = decode([
    0x28, 0x02, 0x10, // i32.load align=2 offset=16
    0x29, 0x43, 0x02, 0x08, // i64.load align=3 memory 2 offset=8
    0x3b, 0x41, 0x80, 0x01, 0x00, // i32.store16 align=1 memory 128 offset=0
    0x3f, 0x00, // memory.size 0
    0x40, 0x03, // memory.grow 3
    0xfc, 0x08, 0x04, 0x01, // memory.init data 4 memory 1
    0xfc, 0x09, 0x02, // data.drop 2
    0xfc, 0x0a, 0x01, 0x02, // memory.copy 1 <- 2
    0xfc, 0x0b, 0x00, // memory.fill 0
    0xfc, 0x0c, 0x05, 0x01, // table.init elem 5 table 1
    0xfc, 0x0e, 0x00, 0x03, // table.copy 0 <- 3
    0xfc, 0x0f, 0x02, // table.grow 2
    0xfc, 0x87, 0x00, // i64.trunc_sat_f64_u, sub-opcode padded
  ]);
  assert.deepEqual([load.align, load.memory, load.offset], [2, 0, 16]);
  assert.deepEqual([load2.align, load2.memory, load2.offset], [3, 2, 8]);
  assert.deepEqual([store.align, store.memory, store.offset, store.pos - store.start], [1, 128, 0, 5]);
  assert.deepEqual([size.op, size.memory, grow.op, grow.memory], [Op.MemorySize, 0, Op.MemoryGrow, 3]);
  assert.deepEqual([init.op, init.sub, init.index, init.memory, init.immStart], [Op.PrefixMisc, 8, 4, 1, init.start + 2]);
  assert.deepEqual([drop.sub, drop.index], [9, 2]);
  assert.deepEqual([copy.sub, copy.memory, copy.index2], [10, 1, 2]);
  assert.deepEqual([fill.sub, fill.memory], [11, 0]);
  assert.deepEqual([tinit.sub, tinit.index, tinit.index2], [12, 5, 1]);
  assert.deepEqual([tcopy.sub, tcopy.index, tcopy.index2], [14, 0, 3]);
  assert.deepEqual([tgrow.sub, tgrow.index], [15, 2]);
  assert.deepEqual([sat.sub, sat.pos - sat.start], [7, 3]);
  const r = new CodeReader(Uint8Array.from([0x29, 0x43, 0x02, 0x08, 0xfc, 0x09, 0x00]));
  r.next();
  r.next();
  assert.ok(r.features & Feature.MultiMemory && r.features & Feature.BulkMemory && r.usesDataCount);
});

test('SIMD immediates', () => {
  const lanes = Array.from({ length: 16 }, (_, i) => i);
  const [load, cnst, shuffle, extract, loadLane, storeLane, zero, add] = decode([
    0xfd, 0x00, 0x04, 0x20, // v128.load align=4 offset=32
    0xfd, 0x0c, ...lanes, // v128.const
    0xfd, 0x0d, ...lanes, // i8x16.shuffle
    0xfd, 0x15, 0x0f, // i8x16.extract_lane_s 15
    0xfd, 0x54, 0x00, 0x00, 0x07, // v128.load8_lane offset=0 lane 7
    0xfd, 0x5b, 0x43, 0x01, 0x10, 0x01, // v128.store64_lane align=3 memory 1 offset=16 lane 1
    0xfd, 0x5c, 0x02, 0x00, // v128.load32_zero
    0xfd, 0xae, 0x01, // i32x4.add (two-byte sub-opcode)
  ]);
  assert.deepEqual([load.sub, load.align, load.offset, load.pos], [0, 4, 32, 4]);
  assert.deepEqual([cnst.sub, cnst.immStart, cnst.pos - cnst.start], [0x0c, cnst.start + 2, 18]);
  assert.deepEqual([shuffle.sub, shuffle.pos - shuffle.start], [0x0d, 18]);
  assert.deepEqual([extract.sub, extract.lane], [0x15, 15]);
  assert.deepEqual([loadLane.sub, loadLane.offset, loadLane.lane], [0x54, 0, 7]);
  assert.deepEqual([storeLane.sub, storeLane.align, storeLane.memory, storeLane.offset, storeLane.lane], [0x5b, 3, 1, 16, 1]);
  assert.deepEqual([zero.sub, zero.align], [0x5c, 2]);
  assert.deepEqual([add.op, add.sub, add.pos - add.start], [Op.PrefixSimd, 0xae, 3]);
});

test('truncated immediates and unknown opcodes are format errors', () => {
  for (const bytes of [[0x41], [0x42, 0x80], [0x43, 0, 0], [0x44, 0, 0, 0, 0, 0, 0, 0], [0xfd, 0x0c, 1, 2], [0x0e, 0x02, 0x00], [0x1c, 0x01], [0xfc], [0x28, 0x02]]) {
    assert.throws(() => decode(bytes), ModuleFormatError, bytes.join(','));
  }
  for (const op of [0x16, 0x17, 0x1d, 0x1e, 0x27, 0xc5, 0xcf, 0xd7, 0xff]) {
    assert.throws(() => decode([op]), { name: 'ModuleFormatError', message: `unknown opcode 0x${op.toString(16)} at offset 0x0` });
  }
  assert.throws(() => decode([0xfe, 0x10, 2, 0]), UnsupportedFeatureError);
});

function v8Refuses(code: number[], pattern: RegExp): boolean {
  const bytes = wasm(
    section(1, vec([functype([], [])])),
    section(3, vec([[0]])),
    section(5, vec([[0, 1]])),
    section(10, vec([body([], [...code, ...new Array<number>(20).fill(0), 0x0b])])),
  );
  try {
    new WebAssembly.Module(bytes);
    return false;
  } catch (e) {
    return pattern.test((e as Error).message);
  }
}

function weRefuse(code: number[]): 'unknown' | 'unsupported' | 'known' {
  try {
    new CodeReader(Uint8Array.from([...code, ...new Array<number>(20).fill(0)])).next();
    return 'known';
  } catch (e) {
    if (e instanceof UnsupportedFeatureError) return 'unsupported';
    assert.ok(e instanceof ModuleFormatError);
    return 'unknown';
  }
}

test('the 0xFD and 0xFC opcode tables agree with V8', () => {
  // V8 implements relaxed SIMD (0x100-0x113), which we refuse as unsupported.
  for (let sub = 0; sub < 0x140; sub++) {
    const code = [0xfd, ...u32(sub)];
    const ours = weRefuse(code);
    const v8 = v8Refuses(code, /invalid simd opcode/);
    assert.equal(ours === 'unknown', v8, `0xfd ${sub.toString(16)}: ours ${ours}, V8 ${v8 ? 'unknown' : 'known'}`);
    if (sub >= 0x100 && sub < 0x114) assert.equal(ours, 'unsupported');
  }
  for (let sub = 0; sub < 0x40; sub++) {
    const code = [0xfc, ...u32(sub)];
    const ours = weRefuse(code);
    const v8 = v8Refuses(code, /invalid numeric opcode/);
    assert.equal(ours !== 'known', v8, `0xfc ${sub.toString(16)}: ours ${ours}, V8 ${v8 ? 'unknown' : 'known'}`);
  }
  for (let op = 0; op < 0x100; op++) {
    const ours = weRefuse([op]);
    const v8 = v8Refuses([op], /Invalid opcode/);
    if (v8) assert.notEqual(ours, 'known', `opcode 0x${op.toString(16)} is unknown to V8`);
  }
});


test('a large generated body decodes, every instruction counted (its speed: npm run bench -- parse)', () => {
  // 1 MB of mixed instructions in one function.
  const unit = [0x20, 0x00, 0x41, 0xe8, 0x07, 0x6a, 0x21, 0x00, 0x23, 0x00, 0x1a, 0x28, 0x02, 0x10, 0x1a];
  const code: number[] = [];
  while (code.length < 1_000_000) code.push(...unit);
  code.push(0x0b);
  const m = wasm(section(1, vec([functype([], [])])), section(3, vec([[0]])), section(10, vec([body([[1, 0x7f]], code)])));
  const info = parseModule(m);
  assert.equal(info.code[0].instructionCount, ((code.length - 1) / unit.length) * 8);
});
