// Mutations of well-formed inputs: what a careless or hostile sender makes of
// a module, a snapshot or a packet stream.

import { Random } from './random.ts';

/** A u32 LEB128 in exactly five bytes, so a size can be replaced without moving anything else's encoding. */
function leb5(v: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 5; i++) {
    out.push(((v >>> (7 * i)) & 0x7f) | (i < 4 ? 0x80 : 0));
  }
  return out;
}

function readLeb(bytes: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    if (pos + i >= bytes.length) return undefined;
    const b = bytes[pos + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  return undefined;
}

/** Section boundaries of something shaped like a module, as far as they can be followed. */
export function sectionHeaders(bytes: Uint8Array): { id: number; sizeAt: number; payload: number; end: number }[] {
  const out: { id: number; sizeAt: number; payload: number; end: number }[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    const size = readLeb(bytes, pos + 1);
    if (!size) break;
    const end = size.next + size.value;
    out.push({ id: bytes[pos], sizeAt: pos + 1, payload: size.next, end });
    if (end > bytes.length) break;
    pos = end;
  }
  return out;
}

export type MutationKind = 'truncate' | 'bitflip' | 'overwrite' | 'insert' | 'delete' | 'oversize' | 'hugecount' | 'duplicate';
export const MUTATION_KINDS: readonly MutationKind[] = ['truncate', 'bitflip', 'overwrite', 'insert', 'delete', 'oversize', 'hugecount', 'duplicate'];

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One mutation of `input` (which is not changed); `kind` says which. */
export function mutate(input: Uint8Array, random: Random, kind: MutationKind = random.pick(MUTATION_KINDS)): Uint8Array {
  const n = input.length;
  const at = () => random.int(Math.max(1, n));
  switch (kind) {
    case 'truncate':
      return input.slice(0, at());
    case 'bitflip': {
      const out = input.slice();
      const flips = random.logInt(1, 16);
      for (let i = 0; i < flips && n > 0; i++) out[at()] ^= 1 << random.int(8);
      return out;
    }
    case 'overwrite': {
      const out = input.slice();
      const start = at();
      const len = Math.min(n - start, random.logInt(1, 64));
      const special = [0x00, 0xff, 0x7f, 0x80];
      for (let i = 0; i < len; i++) out[start + i] = random.chance(0.5) ? random.pick(special) : random.int(256);
      return out;
    }
    case 'insert': {
      const pos = at();
      return concat(input.subarray(0, pos), random.bytes(random.logInt(1, 256)), input.subarray(pos));
    }
    case 'delete': {
      const pos = at();
      return concat(input.subarray(0, pos), input.subarray(Math.min(n, pos + random.logInt(1, 256))));
    }
    case 'oversize':
    case 'hugecount':
    case 'duplicate': {
      const sections = sectionHeaders(input).filter((s) => s.end <= n);
      if (sections.length === 0) return mutate(input, random, 'bitflip');
      const s = random.pick(sections);
      if (kind === 'duplicate') return concat(input.subarray(0, s.end), input.subarray(s.sizeAt - 1, s.end), input.subarray(s.end));
      if (kind === 'oversize') {
        // The section claims more (or far more) bytes than it has.
        const size = random.chance(0.5) ? 0xffffffff - random.int(16) : s.end - s.payload + random.logInt(1, 1 << 20);
        return concat(input.subarray(0, s.sizeAt), leb5(size >>> 0), input.subarray(s.payload));
      }
      // The count at the start of the payload becomes enormous; the section size is fixed up.
      const count = readLeb(input, s.payload);
      if (!count || count.next > s.end) return mutate(input, random, 'bitflip');
      const huge = leb5((0xffffffff - random.int(1 << 16)) >>> 0);
      const payload = concat(huge, input.subarray(count.next, s.end));
      return concat(input.subarray(0, s.sizeAt), leb5(payload.length), payload, input.subarray(s.end));
    }
  }
}
