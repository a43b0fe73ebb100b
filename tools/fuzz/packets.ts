// Mutation fuzzing of the packet parser: a guest program (guest/send.wat)
// sends harness-chosen bytes to the host through gate.io, as a program's
// outgoing packets. Every input must end the run normally (the bytes made
// sense) or kill the instance with ABI_VIOLATION and a message; an internal
// error, a thrown exception, a hang or an instance left behind is a crash.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { ProgramInstance } from '../../src/host/program-instance.ts';
import { CODE_SERVICES, Domain, makeDataPacket, makeFlowPacket, makePacket } from '../../src/runtime/packet/packet.ts';
import { echoService, Registry } from '../../src/services/index.ts';
import { mutate } from './mutate.ts';
import { clearErrorCode, count, describe, within, type MutationCounts } from './outcome.ts';
import type { MutationRunOptions } from './loader.ts';
import { Random } from './random.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where the guest's send buffer starts and how much it holds. */
const BUFFER = 65536;
const BUFFER_SIZE = 65536;
const HANG_MS = 30_000;
const SERVICE_NAMES = ['origin', 'catalog', 'echo', 'gate.computer/origin', 'gate.computer/catalog', 'nonexistent'];
const encoder = new TextEncoder();

function discovery(names: readonly string[]): Uint8Array {
  const encoded = names.map((n) => encoder.encode(n));
  const p = makePacket(10 + encoded.reduce((s, n) => s + 1 + n.length, 0), CODE_SERVICES, Domain.CALL);
  p[8] = names.length & 0xff;
  p[9] = names.length >> 8;
  let at = 10;
  for (const n of encoded) {
    p[at++] = n.length;
    p.set(n, at);
    at += n.length;
  }
  return p;
}

function padded(p: Uint8Array): Uint8Array {
  const out = new Uint8Array((p.length + 7) & ~7);
  out.set(p);
  return out;
}

/** A plausible packet: discovery, or a call, info, flow or data packet for a low service code. */
function validPacket(random: Random): Uint8Array {
  const code = random.int(4);
  switch (random.int(5)) {
    case 0:
      return discovery(Array.from({ length: random.int(4) + 1 }, () => random.pick(SERVICE_NAMES)));
    case 1: {
      const p = makePacket(8 + random.int(64), code, Domain.CALL);
      p.set(random.bytes(p.length - 8), 8);
      return p;
    }
    case 2:
      return makeFlowPacket(code, [{ id: random.int(3), value: random.int(1 << 20) }]);
    case 3:
      return makeDataPacket(code, random.int(3), random.bytes(random.int(128)), random.int(2));
    default: {
      const p = makePacket(8 + random.int(16), code, Domain.INFO);
      p.set(random.bytes(p.length - 8), 8);
      return p;
    }
  }
}

/** The bytes a guest sends: random, a header with random fields, or a stream of packets mutated. */
export function packetInput(random: Random): Uint8Array {
  switch (random.int(4)) {
    case 0:
      return random.bytes(random.logInt(1, 4096));
    case 1: {
      const p = random.bytes(random.logInt(8, 256));
      const v = new DataView(p.buffer);
      v.setUint32(0, random.chance(0.5) ? p.length : random.chance(0.5) ? random.int(1 << 17) : (random.next() * 4294967296) >>> 0, true);
      v.setInt16(4, random.pick([-2, -1, 0, 1, 2, 255, -32768, 32767]), true);
      p[6] = random.int(256);
      return p;
    }
    default: {
      const parts = [discovery(SERVICE_NAMES.slice(0, random.int(SERVICE_NAMES.length) + 1))];
      const n = random.int(6);
      for (let i = 0; i < n; i++) parts.push(validPacket(random));
      const total = parts.reduce((s, p) => s + padded(p).length, 0);
      const stream = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        stream.set(p, at);
        at += padded(p).length;
      }
      return random.chance(0.8) ? mutate(stream, random, random.pick(['truncate', 'bitflip', 'overwrite', 'insert', 'delete'])) : stream;
    }
  }
}

export async function fuzzPackets(options: MutationRunOptions, counts: MutationCounts): Promise<void> {
  const random = new Random(options.seed ^ 0x9ac4e7);
  const engine = nodeEngine();
  const registry = new Registry().register(echoService);
  const compiled = await new ModuleCache(null).get(new Uint8Array(readFileSync(path.join(here, 'guest/send.wasm'))));
  for (let i = 0; i < options.count && Date.now() < options.deadline; i++) {
    const input = packetInput(random).subarray(0, BUFFER_SIZE);
    counts.inputs++;
    const failed = (what: string): void => {
      mkdirSync(options.failures, { recursive: true });
      const saved = path.join(options.failures, `packets-${options.seed}-${i}.bin`);
      writeFileSync(saved, input);
      counts.crashes.push({ input: 'packets', what, saved });
      options.log(`CRASH packet input ${i} (saved ${saved}): ${what}`);
    };
    try {
      const program = new ProgramInstance({
        engine,
        compiled,
        registry,
        context: { instance: `packets-${i}`, scope: [] },
        function: 'send',
        timeLimit: 5_000,
      });
      const memory = program.instance.abi.bytes();
      memory.set(input, BUFFER);
      new DataView(memory.buffer).setUint32(0, BUFFER, true);
      new DataView(memory.buffer).setUint32(4, input.length, true);
      const status = await within(HANG_MS, 'packet run', program.run());
      if (status.cause === 'INTERNAL' || status.limit) {
        failed(`status ${status.state} ${status.cause}${status.limit ? ` (${status.limit} limit)` : ''}: ${status.error}`);
      } else if (status.cause === 'ABI_VIOLATION' && !status.error) {
        failed('ABI_VIOLATION without a message');
      } else if (engine.runnable !== 0) {
        failed(`an instance is still queued after its run ended (${status.state})`);
      } else {
        count(counts, `${status.state}${status.cause !== 'NORMAL' ? ` ${status.cause}` : ''}`);
      }
    } catch (error) {
      const code = clearErrorCode(error);
      if (code) count(counts, code);
      else failed(describe(error));
    }
  }
}
