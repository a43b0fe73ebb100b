// The identity service (services.md §4.3): a call whose first byte is 0
// returns the principal id of the instance's owner (empty when anonymous),
// 1 returns the instance id as a lower-case UUID; anything else an empty
// reply. Stateless.

import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../runtime/packet/packet.ts';
import type { ServiceFactory } from '../runtime/service/service.ts';

export const IDENTITY_NAME = 'identity';
export const IDENTITY_REVISION = '0';

export const IDENTITY_CALL_PRINCIPAL_ID = 0;
export const IDENTITY_CALL_INSTANCE_ID = 1;

const encoder = new TextEncoder();

export const identityService: ServiceFactory = {
  name: IDENTITY_NAME,
  revision: IDENTITY_REVISION,
  streams: false,
  create(context, config) {
    return {
      start() {},
      handle(packet) {
        if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
        let id = '';
        if (packet.length > HEADER_SIZE) {
          switch (packet[HEADER_SIZE]) {
            case IDENTITY_CALL_PRINCIPAL_ID:
              id = context.principal ?? '';
              break;
            case IDENTITY_CALL_INSTANCE_ID:
              // Read per call: the context is the current run's.
              id = context.instance.toLowerCase();
              break;
          }
        }
        const bytes = encoder.encode(id);
        const reply = makePacket(HEADER_SIZE + bytes.length, config.code, Domain.CALL);
        reply.set(bytes, HEADER_SIZE);
        return reply;
      },
      shutdown: () => new Uint8Array(0),
      hibernate: () => ({ state: new Uint8Array(0), idle: true }), // answers at once, keeps nothing
    };
  },
};
