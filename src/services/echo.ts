// The `test` service: echoes each call's content back. Gate's test harness
// uses such a service for hello.wasm's test_ext (services.md §4.9); it is
// also the smallest complete example of a service.

import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../runtime/packet/packet.ts';
import type { ServiceFactory } from '../runtime/service/service.ts';

export const echoService: ServiceFactory = {
  name: 'test',
  revision: '0',
  streams: false,
  create(_context, config) {
    return {
      start() {},
      handle(packet) {
        if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
        const reply = makePacket(packet.length, config.code, Domain.CALL);
        reply.set(packet.subarray(HEADER_SIZE), HEADER_SIZE);
        return reply;
      },
      shutdown: () => new Uint8Array(0), // no state
      hibernate: () => ({ state: new Uint8Array(0), idle: true }),
    };
  },
};
