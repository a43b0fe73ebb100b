// A tiny assembler for building module binaries byte by byte in tests, where
// the exact layout matters (Binaryen re-encodes what it reads).

import { Writer } from './binary.ts';

export type Bytes = number[];

/** The WebAssembly spec suite as JSON commands, beside the repository (../shared). */
export const SPEC_SUITE_DIR = decodeURIComponent(new URL('../../../../shared/wasm-spec-tests/json', import.meta.url).pathname);

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const V128 = 0x7b;
export const FUNCREF = 0x70;

export function u32(n: number): Bytes {
  const w = new Writer(8);
  w.u32(n);
  return [...w.finish()];
}

export function s32(n: number): Bytes {
  const w = new Writer(8);
  w.s32(n);
  return [...w.finish()];
}

export function name(s: string): Bytes {
  const b = new TextEncoder().encode(s);
  return [...u32(b.length), ...b];
}

export function vec(items: Bytes[]): Bytes {
  return [...u32(items.length), ...items.flat()];
}

export function section(id: number, content: Bytes): Bytes {
  return [id, ...u32(content.length), ...content];
}

export function custom(sectionName: string, content: Bytes): Bytes {
  return section(0, [...name(sectionName), ...content]);
}

export function functype(params: number[], results: number[]): Bytes {
  return [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))];
}

/** A code entry: locals as [count, type] groups, then the instructions (give the final 0x0b yourself). */
export function body(locals: [number, number][], code: Bytes): Bytes {
  const content = [...vec(locals.map(([n, t]) => [...u32(n), t])), ...code];
  return [...u32(content.length), ...content];
}

export function wasm(...sections: Bytes[]): Uint8Array<ArrayBuffer> {
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);
}
