// Synthetic Gate programs of a chosen size, for the instrumentation bench:
// many functions with loops, memory accesses, direct and indirect calls (to
// lower-numbered functions, so nothing recurses), built with Binaryen's
// module builder. They pass Gate's import check (the only import is
// wasi_snapshot_preview1.fd_write) and are deterministic for a given size.

import type BinaryenModule from 'binaryen';
import { loadBinaryen } from '../tools/binaryen.ts';

type Binaryen = typeof BinaryenModule;
type Module = BinaryenModule.Module;
type Expr = number;

/** xorshift32: the same sequence on every run. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const TABLE_SIZE = 64;

function build(b: Binaryen, functions: number): Uint8Array {
  const m: Module = new b.Module();
  try {
    const i32 = b.i32;
    const none = b.none;
    const fnType = b.createType([i32, i32]);
    const rand = rng(0x9e3779b9 ^ functions);
    m.setFeatures(b.Features.MVP | b.Features.MutableGlobals);
    m.addFunctionImport('fd_write', 'wasi_snapshot_preview1', 'fd_write', b.createType([i32, i32, i32, i32]), i32);
    m.setMemory(2, 16, 'memory');
    m.addGlobal('counter', i32, true, m.i32.const(0));

    // Locals: 0 a, 1 b (params), 2 i, 3 acc, 4 t.
    const get = (i: number): Expr => m.local.get(i, i32);
    const set = (i: number, v: Expr): Expr => m.local.set(i, v);
    const k = (): Expr => m.i32.const((rand(0x7fffffff) | 1) >>> 0);
    const addr = (e: Expr): Expr => m.i32.and(e, m.i32.const(0xfffc));
    const name = (i: number): string => `f${i}`;

    for (let f = 0; f < functions; f++) {
      const body: Expr[] = [set(3, m.i32.xor(get(0), k()))];
      const segments = 2 + rand(6);
      for (let s = 0; s < segments; s++) {
        const kind = f === 0 ? rand(2) * 3 : rand(5);
        const label = `l${s}`;
        const callee = (): string => name(Math.max(0, f - 1 - rand(Math.min(f, 40))));
        switch (kind) {
          case 0: // counted loop over memory
            body.push(
              set(2, m.i32.const(0)),
              m.loop(
                label,
                m.block(null, [
                  set(3, m.i32.add(m.i32.mul(get(3), k()), get(2))),
                  m.i32.store(0, 4, addr(m.i32.add(get(3), get(2))), get(3)),
                  set(4, m.i32.load(0, 4, addr(m.i32.xor(get(3), k())))),
                  set(3, m.i32.xor(get(3), m.i32.rotl(get(4), m.i32.const(1 + rand(30))))),
                  set(2, m.i32.add(get(2), m.i32.const(1))),
                  m.br(label, m.i32.lt_u(get(2), m.i32.and(get(1), m.i32.const(15)))),
                ]),
              ),
            );
            break;
          case 1: // conditional direct call
            body.push(
              m.if(
                m.i32.and(get(3), k()),
                set(3, m.i32.add(get(3), m.call(callee(), [get(3), get(1)], i32))),
                set(3, m.i32.sub(get(3), m.i32.load(0, 4, addr(get(0))))),
              ),
            );
            break;
          case 2: // loop with a call inside
            body.push(
              set(2, m.i32.const(0)),
              m.loop(
                label,
                m.block(null, [
                  set(3, m.i32.add(get(3), m.call(callee(), [get(2), get(3)], i32))),
                  set(2, m.i32.add(get(2), m.i32.const(1))),
                  m.br(label, m.i32.lt_u(get(2), m.i32.const(3))),
                ]),
              ),
            );
            break;
          case 3: // straight-line arithmetic and a global
            body.push(
              set(4, m.i32.mul(m.i32.add(get(3), k()), m.i32.shl(get(1), m.i32.const(rand(31))))),
              set(3, m.i32.xor(get(3), m.i32.shr_u(get(4), m.i32.const(1 + rand(30))))),
              m.global.set('counter', m.i32.add(m.global.get('counter', i32), get(3))),
            );
            break;
          case 4: // indirect call through the table
            body.push(
              set(
                3,
                m.i32.add(
                  get(3),
                  m.call_indirect('table', m.i32.and(get(3), m.i32.const(TABLE_SIZE - 1)), [get(1), get(3)], fnType, i32),
                ),
              ),
            );
            break;
        }
      }
      if (rand(16) === 0) {
        // Now and then, a debug write (iovec at 0).
        body.push(m.drop(m.call('fd_write', [m.i32.const(2), m.i32.const(0), m.i32.const(1), m.i32.const(8)], i32)));
      }
      body.push(m.return(get(3)));
      m.addFunction(name(f), fnType, i32, [i32, i32, i32], m.block(null, body, none));
    }

    m.addTable('table', TABLE_SIZE, TABLE_SIZE);
    const slots = Array.from({ length: TABLE_SIZE }, (_, i) => name(Math.floor((i * functions) / TABLE_SIZE)));
    m.addActiveElementSegment('table', 'elems', slots, m.i32.const(0));
    m.addFunction('main', none, i32, [], m.call(name(functions - 1), [m.i32.const(1), m.i32.const(2)], i32));
    m.addFunctionExport('main', 'main');
    if (!m.validate()) throw new Error('synthetic module does not validate');
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

/** A module of about `bytes` bytes (within a few percent). */
export async function syntheticModule(bytes: number): Promise<Uint8Array> {
  const b = await loadBinaryen();
  const probe = 500;
  const perFunction = build(b, probe).byteLength / probe;
  let functions = Math.max(1, Math.round(bytes / perFunction));
  let out = build(b, functions);
  // One correction step: the size per function is not quite constant.
  functions = Math.max(1, Math.round((functions * bytes) / out.byteLength));
  out = build(b, functions);
  return out;
}
