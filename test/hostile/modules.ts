// Hostile modules, built byte by byte: each is small and valid, and asks
// something expensive of the server.

import { body, FUNCREF, functype, I32, section, u32, vec, wasm } from '../../src/runtime/wasm/testing.ts';

/**
 * `copies` functions that each push `depth` results of a call, then add them
 * up: the rewrite saves the values live at every call, so their number grows
 * with the square of the depth (the limits refuse a depth past 1,024, and
 * more than 65,536 such values plus one per byte). The callee calls itself,
 * so it can be suspended and every call is instrumented. A nonce makes every
 * module new to the server.
 */
export function deepStack(depth: number, copies = 1, nonce = Math.floor(Math.random() * 2 ** 31)): Uint8Array {
  const code: number[] = [];
  for (let i = 0; i < depth; i++) code.push(0x10, 0);
  for (let i = 1; i < depth; i++) code.push(0x6a);
  code.push(0x1a, 0x0b);
  return wasm(
    section(1, vec([functype([], [I32]), functype([], [])])),
    section(3, vec([[0], ...Array.from({ length: copies }, () => [1])])),
    section(
      10,
      vec([
        body([], [0x10, 0, 0x1a, 0x41, ...u32(nonce & 0x3f), 0x0b]),
        ...Array.from({ length: copies }, () => body([], code)),
      ]),
    ),
    section(0, [5, ...new TextEncoder().encode('nonce'), ...u32(nonce)]),
  );
}

/** `functions` functions of `calls` calls each (2 bytes a call): a million take the rewrite seconds and gigabytes. */
export function manyCalls(calls: number, functions = 1, nonce = Math.floor(Math.random() * 2 ** 31)): Uint8Array {
  const code = new Array<number>(calls * 2 + 1);
  for (let i = 0; i < calls; i++) {
    code[2 * i] = 0x10;
    code[2 * i + 1] = 0;
  }
  code[calls * 2] = 0x0b;
  const one = body([], code);
  return wasm(
    section(1, vec([functype([], [])])),
    section(3, vec(Array.from({ length: functions }, () => [0]))),
    section(10, vec(Array.from({ length: functions }, () => one))),
    section(0, [5, ...new TextEncoder().encode('nonce'), ...u32(nonce)]),
  );
}

/** A module of a table with `entries` entries (the 48 bytes with 10,000,000), exporting a no-op `run`. */
export function bigTable(entries: number): Uint8Array {
  return wasm(
    section(1, vec([functype([], [])])),
    section(3, vec([[0]])),
    section(4, vec([[FUNCREF, 1, ...u32(entries), ...u32(entries)]])),
    section(7, vec([[3, ...new TextEncoder().encode('run'), 0, 0]])),
    section(10, vec([body([], [0x0b])])),
  );
}
