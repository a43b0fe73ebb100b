// Gate packet framing (abi.md §3): an 8-byte little-endian header
// {u32 size, i16 code, u8 domain, u8 index}, then content, then zero padding
// to a multiple of 8 on the wire. size excludes the padding.

export const HEADER_SIZE = 8;
export const ALIGNMENT = 8;
/** Largest packet either side may send, header included. */
export const MAX_PACKET_SIZE = 65536;
/** Service discovery code. */
export const CODE_SERVICES = -1;
/** Largest number of services one instance may discover. */
export const MAX_SERVICES = 256;
/** Data packet header: packet header + i32 stream id + i32 note. */
export const DATA_HEADER_SIZE = 16;
/** Flow packet entry: i32 stream id + i32 value. */
export const FLOW_ENTRY_SIZE = 8;

export const Domain = {
  CALL: 0,
  INFO: 1,
  FLOW: 2,
  DATA: 3,
} as const;
export type Domain = (typeof Domain)[keyof typeof Domain];

export const SERVICE_STATE_AVAIL = 0x1;

export function align(size: number): number {
  return (size + (ALIGNMENT - 1)) & ~(ALIGNMENT - 1);
}

function view(p: Uint8Array): DataView {
  return new DataView(p.buffer, p.byteOffset, p.byteLength);
}

export function packetSize(p: Uint8Array): number {
  return view(p).getUint32(0, true);
}

/** Low 4 bits; the high bits are ignored on receipt. */
export function packetDomain(p: Uint8Array): number {
  return p[6] & 0xf;
}

export function packetIndex(p: Uint8Array): number {
  return p[7];
}

/** A new zeroed packet of the given total size with its header filled in. */
export function makePacket(size: number, code: number, domain: number, index = 0): Uint8Array {
  const p = new Uint8Array(size);
  const v = view(p);
  v.setUint32(0, size, true);
  v.setInt16(4, code, true);
  p[6] = domain;
  p[7] = index;
  return p;
}

/** Set size and code of a packet made by a service (services fill only domain and content). */
export function stampPacket(p: Uint8Array, code: number): void {
  const v = view(p);
  v.setUint32(0, p.byteLength, true);
  v.setInt16(4, code, true);
}

/** A data packet: header, stream id, note, data. Empty data means end of stream. */
export function makeDataPacket(code: number, id: number, data: Uint8Array, note = 0): Uint8Array {
  const p = makePacket(DATA_HEADER_SIZE + data.byteLength, code, Domain.DATA);
  const v = view(p);
  v.setInt32(8, id, true);
  v.setInt32(12, note, true);
  p.set(data, DATA_HEADER_SIZE);
  return p;
}

/** A flow packet with the given {id, value} entries. */
export function makeFlowPacket(code: number, flows: readonly { id: number; value: number }[]): Uint8Array {
  const p = makePacket(HEADER_SIZE + FLOW_ENTRY_SIZE * flows.length, code, Domain.FLOW);
  const v = view(p);
  flows.forEach((f, i) => {
    v.setInt32(HEADER_SIZE + i * FLOW_ENTRY_SIZE, f.id, true);
    v.setInt32(HEADER_SIZE + i * FLOW_ENTRY_SIZE + 4, f.value, true);
  });
  return p;
}

/** Entries of a flow packet; a trailing partial entry is ignored. */
export function readFlows(p: Uint8Array): { id: number; value: number }[] {
  const v = view(p);
  const n = Math.floor((p.byteLength - HEADER_SIZE) / FLOW_ENTRY_SIZE);
  const flows = [];
  for (let i = 0; i < n; i++) {
    const off = HEADER_SIZE + i * FLOW_ENTRY_SIZE;
    flows.push({ id: v.getInt32(off, true), value: v.getInt32(off + 4, true) });
  }
  return flows;
}

export function dataStreamId(p: Uint8Array): number {
  return view(p).getInt32(8, true);
}

export function dataNote(p: Uint8Array): number {
  return view(p).getInt32(12, true);
}

export function dataPayload(p: Uint8Array): Uint8Array {
  return p.subarray(DATA_HEADER_SIZE);
}
