// Bounds-checked access to the program's memory on behalf of imports.
//
// Addresses follow wasm semantics: pointer arithmetic done by the program's
// library code wraps at 32 bits (ptrAdd), while a field offset added to a
// pointer does not (the effective address may exceed 2^32 and then simply
// traps). Every failed check ends the run with MEMORY_ACCESS_OUT_OF_BOUNDS
// through host.trap; a DataView RangeError must never escape, since the
// engine would mistake it for a stack overflow.

import { Cause } from '../instance/status.ts';
import type { AbiHost } from './host.ts';

/** A pointer argument as an unsigned 32-bit number. */
export function u32(x: number): number {
  return x >>> 0;
}

/** Pointer arithmetic as the program's code does it: modulo 2^32. */
export function ptrAdd(ptr: number, delta: number): number {
  return (ptr + delta) >>> 0;
}

function check(host: AbiHost, view: DataView, addr: number, size: number): void {
  if (addr < 0 || addr + size > view.byteLength) host.trap(Cause.MEMORY_ACCESS_OUT_OF_BOUNDS);
}

export function loadU8(host: AbiHost, addr: number): number {
  const v = host.view();
  check(host, v, addr, 1);
  return v.getUint8(addr);
}

export function loadU16(host: AbiHost, addr: number): number {
  const v = host.view();
  check(host, v, addr, 2);
  return v.getUint16(addr, true);
}

export function loadU32(host: AbiHost, addr: number): number {
  const v = host.view();
  check(host, v, addr, 4);
  return v.getUint32(addr, true);
}

export function loadU64(host: AbiHost, addr: number): bigint {
  const v = host.view();
  check(host, v, addr, 8);
  return v.getBigUint64(addr, true);
}

export function storeU8(host: AbiHost, addr: number, value: number): void {
  const v = host.view();
  check(host, v, addr, 1);
  v.setUint8(addr, value);
}

export function storeU16(host: AbiHost, addr: number, value: number): void {
  const v = host.view();
  check(host, v, addr, 2);
  v.setUint16(addr, value, true);
}

export function storeU32(host: AbiHost, addr: number, value: number): void {
  const v = host.view();
  check(host, v, addr, 4);
  v.setUint32(addr, value >>> 0, true);
}

export function storeU64(host: AbiHost, addr: number, value: bigint): void {
  const v = host.view();
  check(host, v, addr, 8);
  v.setBigUint64(addr, BigInt.asUintN(64, value), true);
}

/**
 * The whole range [ptr, ptr+len) as a live view, checked before any byte
 * moves (bulk transfers are all-or-nothing). Length 0 is not checked.
 */
export function range(host: AbiHost, ptr: number, len: number): Uint8Array {
  const bytes = host.bytes();
  if (len === 0) return bytes.subarray(0, 0);
  const end = ptr + len;
  if (end > bytes.byteLength) host.trap(Cause.MEMORY_ACCESS_OUT_OF_BOUNDS);
  return bytes.subarray(ptr, end);
}

/** An 8-byte {u32 base, u32 length} I/O vector record. */
export interface IoVec {
  base: number;
  len: number;
}

/** Entry i of an iovec array (the record address wraps like C pointer arithmetic). */
export function loadIoVec(host: AbiHost, iovs: number, i: number): IoVec {
  const rec = ptrAdd(iovs, 8 * i);
  const v = host.view();
  check(host, v, rec, 8);
  return { base: v.getUint32(rec, true), len: v.getUint32(rec + 4, true) };
}

/** Length field of iovec i only (io_N's "sending?" scan reads nothing else). */
export function loadIoVecLen(host: AbiHost, iovs: number, i: number): number {
  return loadU32(host, ptrAdd(iovs, 8 * i) + 4);
}
