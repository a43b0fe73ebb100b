// A service whose state lives outside the instance (as an external gRPC
// service's does) gets to collect it before the run ends: the runtime awaits
// its prepareShutdown(), so the state reaches the snapshot.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { restoreInstance, snapshotInstance } from '../../src/host/snapshot.ts';
import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../../src/runtime/packet/packet.ts';
import type { SendPacket, ServiceFactory } from '../../src/runtime/service/service.ts';
import { Registry } from '../../src/services/index.ts';
import { launch, until } from '../helpers.ts';

const NAME = 'example.net/counter';

/**
 * Answers each call with a u32 call count and the call's content. Its count
 * is kept "remotely": shutdown() returns only what prepareShutdown()
 * collected. With hold, the reply to the second call is held back.
 */
function counterService(options: { hold: boolean }) {
  const seen: boolean[] = [];
  const factory: ServiceFactory = {
    name: NAME,
    revision: '1',
    streams: false,
    create(_context, config, saved) {
      let count = 0;
      let held: Uint8Array | null = null;
      if (saved && saved.length >= 4) {
        count = new DataView(saved.buffer, saved.byteOffset).getUint32(0, true);
        if (saved.length > 4) held = saved.slice(4);
      }
      let collected: Uint8Array | null = null;
      let send: SendPacket | undefined;
      const reply = (n: number, content: Uint8Array) => {
        const p = makePacket(HEADER_SIZE + 4 + content.length, config.code, Domain.CALL);
        new DataView(p.buffer).setUint32(HEADER_SIZE, n, true);
        p.set(content, HEADER_SIZE + 4);
        return p;
      };
      return {
        start(s) {
          send = s;
          if (held) send(reply(count, held));
          held = null;
        },
        handle(packet) {
          if (packetDomain(packet) !== Domain.CALL) return;
          count++;
          const content = packet.slice(HEADER_SIZE);
          if (options.hold && count === 2) {
            held = content;
            return;
          }
          return reply(count, content);
        },
        async prepareShutdown(suspend) {
          seen.push(suspend);
          await new Promise((r) => setTimeout(r, 20)); // a round trip to where the state lives
          const out = new Uint8Array(4 + (held?.length ?? 0));
          new DataView(out.buffer).setUint32(0, count, true);
          if (held) out.set(held, 4);
          collected = out;
        },
        shutdown: () => collected ?? new Uint8Array(0),
      };
    },
  };
  return { factory, seen };
}

describe('services that save their state elsewhere', () => {
  it('the end of a run waits for prepareShutdown; its state is what the run leaves', async () => {
    const { factory, seen } = counterService({ hold: false });
    const l = await launch('services/external.wasm', { function: 'main', registry: new Registry().register(factory) });
    assert.equal((await l.done).state, 'HALTED');
    assert.equal(l.log(), 'count=1 echo=hello\ncount=2 echo=again\n');
    assert.deepEqual(seen, [true]);
    const state = l.program.instance.capture().channel?.services.find((s) => s.name === NAME);
    assert.deepEqual([...(state?.buffer ?? [])], [2, 0, 0, 0]);
  });

  it('a call pending at suspension is answered after restore, from the saved remote state', async () => {
    const first = counterService({ hold: true });
    const l = await launch('services/external.wasm', { function: 'main', registry: new Registry().register(first.factory) });
    await until(() => l.log().includes('count=1'), 10000, 'the first reply');
    l.program.suspend();
    assert.equal((await l.done).state, 'SUSPENDED');
    assert.deepEqual(first.seen, [true]);
    const snapshot = await snapshotInstance(l.program);

    const second = counterService({ hold: false });
    const chunks: Uint8Array[] = [];
    const restored = await restoreInstance(snapshot, {
      cache: new ModuleCache(null),
      engine: nodeEngine(),
      registry: new Registry().register(second.factory),
      context: { instance: crypto.randomUUID(), scope: [] },
      debug: (c) => chunks.push(c),
    });
    assert.equal((await restored.run()).state, 'HALTED');
    assert.equal(l.log() + Buffer.concat(chunks).toString(), 'count=1 echo=hello\ncount=2 echo=again\n');
  });
});
