// The debug action (api.md §9.6): reading the memory and mutable globals of
// a stopped instance. Breakpoints are not supported by this runtime: a
// request that would set one is answered 501; clearing them is a no-op.

import { statusToJSON } from '../../runtime/instance/status.ts';
import type { ServerParts } from './context.ts';
import { conflict, HttpError } from './errors.ts';
import type { ServerInstance } from './instances.ts';

const OPS = ['CONFIG_GET', 'CONFIG_SET', 'CONFIG_UNION', 'CONFIG_COMPLEMENT', 'READ_GLOBALS', 'READ_MEMORY', 'READ_STACK'] as const;
type Op = (typeof OPS)[number];

export interface DebugRequest {
  op: Op;
  breakpoints: bigint[];
  addr: bigint;
  size: bigint;
}

const parseError = () => new HttpError(400, 'content parse error');
const unsupportedOp = () => new HttpError(501, 'unsupported debug op');

function uint64(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d{1,20}$/.test(v) && BigInt(v) < 2n ** 64n) return BigInt(v);
  throw parseError();
}

/** DebugRequest with protobuf JSON rules (unknown fields are an error; op by name or number). */
export function parseDebugRequest(body: Uint8Array): DebugRequest {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw parseError();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw parseError();
  const out: DebugRequest = { op: 'CONFIG_GET', breakpoints: [], addr: 0n, size: 0n };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'op') {
      if (typeof v === 'number') {
        if (!Number.isInteger(v)) throw parseError();
        if (v < 0 || v >= OPS.length) throw unsupportedOp();
        out.op = OPS[v];
      } else if (typeof v === 'string') {
        if (!(OPS as readonly string[]).includes(v)) throw parseError();
        out.op = v as Op;
      } else if (v !== null) throw parseError();
    } else if (k === 'config') {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) throw parseError();
      for (const [ck, cv] of Object.entries(v as Record<string, unknown>)) {
        if (ck !== 'breakpoints') throw parseError();
        if (cv === null) continue;
        if (!Array.isArray(cv)) throw parseError();
        out.breakpoints = cv.map(uint64);
      }
    } else if (k === 'addr') out.addr = uint64(v);
    else if (k === 'size') out.size = uint64(v);
    else throw parseError();
  }
  return out;
}

/** Largest memory read in one request. */
const MAX_READ = 16 * 1024 * 1024;

export async function debugInstance(parts: ServerParts, inst: ServerInstance, r: DebugRequest): Promise<Record<string, unknown>> {
  if (r.op !== 'CONFIG_GET' && inst.running) throw conflict('instance must be stopped');
  const out: Record<string, unknown> = { module: `sha256/${inst.module}`, status: statusToJSON(inst.status) };
  switch (r.op) {
    case 'CONFIG_GET':
      break;
    case 'CONFIG_SET':
    case 'CONFIG_UNION':
      if (r.breakpoints.length > 100) throw new HttpError(400, 'too many breakpoints');
      if (r.breakpoints.length > 0) throw unsupportedOp();
      break;
    case 'CONFIG_COMPLEMENT':
      break;
    case 'READ_GLOBALS': {
      const { globals } = await parts.instances.inspect(inst);
      const data = new DataView(new ArrayBuffer(globals.length * 8));
      globals.forEach(([, value], i) => {
        if (typeof value === 'bigint') data.setBigUint64(i * 8, BigInt.asUintN(64, value), true);
        else if (Number.isInteger(value)) data.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(value)), true);
        else data.setFloat64(i * 8, value, true);
      });
      out.data = Buffer.from(data.buffer).toString('base64');
      break;
    }
    case 'READ_MEMORY': {
      const { memory } = await parts.instances.inspect(inst);
      const size = r.size === 0n ? BigInt(memory.byteLength) - r.addr : r.size;
      if (r.addr > BigInt(memory.byteLength) || size < 0n || r.addr + size > BigInt(memory.byteLength)) {
        throw new HttpError(400, 'memory read is out of bounds');
      }
      if (size > BigInt(MAX_READ)) throw new HttpError(400, `memory read size limit exceeded (limit ${MAX_READ} bytes)`);
      out.data = Buffer.from(memory.subarray(Number(r.addr), Number(r.addr + size))).toString('base64');
      break;
    }
    case 'READ_STACK':
      throw unsupportedOp();
  }
  parts.metrics.events.inc({ type: 'INSTANCE_DEBUG' });
  return out;
}
