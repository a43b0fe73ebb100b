// The catalog service (services.md §4.2): the call `json` returns the
// services discoverable in the calling instance's context, as a JSON
// document formatted exactly like Go's json.Encoder with tab indentation.

import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../runtime/packet/packet.ts';
import type {
  ServiceConfig,
  ServiceContext,
  ServiceFactory,
  ServiceInstance,
} from '../runtime/service/service.ts';
import type { Registry, ServiceInfo } from './registry.ts';

export const CATALOG_NAME = 'catalog';
export const CATALOG_REVISION = '0';

const HEX = '0123456789abcdef';

/**
 * A JSON string literal as Go's encoding/json writes it by default: HTML
 * characters, U+2028 and U+2029 escaped; lone surrogates (invalid UTF-8 in
 * Go) become U+FFFD.
 */
export function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
    }
    if (c < 0x20 || ch === '<' || ch === '>' || ch === '&') {
      out += '\\u00' + HEX[c >> 4] + HEX[c & 0xf];
    } else if (c === 0x2028 || c === 0x2029) {
      out += '\\u' + c.toString(16);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += '\ufffd';
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/** The catalog document (with its final newline) for the given, already sorted, services. */
export function catalogJson(services: readonly ServiceInfo[]): string {
  if (services.length === 0) {
    return '{\n\t"services": []\n}\n';
  }
  const items = services.map(
    (s) =>
      '\t\t{\n' +
      `\t\t\t"name": ${goJsonString(s.name)},\n` +
      `\t\t\t"revision": ${goJsonString(s.revision)}\n` +
      '\t\t}',
  );
  return '{\n\t"services": [\n' + items.join(',\n') + '\n\t]\n}\n';
}

const encoder = new TextEncoder();
const JSON_CALL = encoder.encode('json');

function isJsonCall(content: Uint8Array): boolean {
  return content.length === JSON_CALL.length && content.every((b, i) => b === JSON_CALL[i]);
}

/**
 * The catalog factory listing registry's services. Register it in the same
 * registry (the per-run child registry) so that it sees what the program can
 * discover. A document that would not fit in one packet gets an empty reply.
 */
export function createCatalog(registry: Registry): ServiceFactory {
  return {
    name: CATALOG_NAME,
    revision: CATALOG_REVISION,
    streams: false,
    create(context: ServiceContext, config: ServiceConfig): ServiceInstance {
      return {
        start() {},
        handle(packet: Uint8Array): Uint8Array | void {
          if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
          let content = new Uint8Array(0);
          if (isJsonCall(packet.subarray(HEADER_SIZE))) {
            content = encoder.encode(catalogJson(registry.list(context)));
            if (HEADER_SIZE + content.length > config.maxSendSize) {
              content = new Uint8Array(0); // fail cleanly: never a truncated document
            }
          }
          const reply = makePacket(HEADER_SIZE + content.length, config.code, Domain.CALL);
          reply.set(content, HEADER_SIZE);
          return reply;
        },
        shutdown() {
          return new Uint8Array(0);
        },
        hibernate: () => ({ state: new Uint8Array(0), idle: true }), // answers at once, keeps nothing
      };
    },
  };
}
