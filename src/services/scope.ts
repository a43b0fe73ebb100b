// The scope service (services.md §4.5, auth.md §13): a program can restrict
// its own *program scope*, never widen it. A capability is granted when both
// the request scope (ServiceContext.scope) and the program scope contain it.
//
// Call 0 (restrict): u8 count, count × (u8 length, token) → reply i16 error
// (always 0). Anything else: empty reply, as in Gate (no query call, so that
// programs see exactly Gate's protocol). A malformed list or an invalid token
// is an ABI violation (Gate: INTERNAL).
//
// Other services ask programScope()/scopeAllows() about the current run.

import { AbiViolation } from '../runtime/instance/errors.ts';
import { Domain, HEADER_SIZE, makePacket, packetDomain } from '../runtime/packet/packet.ts';
import type { ServiceContext, ServiceFactory } from '../runtime/service/service.ts';
import { compareUtf8 } from './registry.ts';
import { SavedStateError } from './varint.ts';

export const SCOPE_NAME = 'scope';
export const SCOPE_REVISION = '0';

export const SCOPE_CALL_RESTRICT = 0;

const TOKEN = /^[0-9A-Za-z\-./:_]{1,255}$/;

/** A valid scope token: 1–255 bytes of [0-9A-Za-z-./:_], no leading/trailing ':' and no '::'. */
export function isValidScopeToken(s: string): boolean {
  return TOKEN.test(s) && !s.startsWith(':') && !s.endsWith(':') && !s.includes('::');
}

// The program scope of each instance's current run. Keyed by the context,
// which the runtime passes to every service of the instance; absent means
// unrestricted.
const restricted = new WeakMap<ServiceContext, ReadonlySet<string>>();

/** The program scope of the instance's current run; null when unrestricted. */
export function programScope(context: ServiceContext): readonly string[] | null {
  const s = restricted.get(context);
  return s === undefined ? null : [...s].sort(compareUtf8);
}

/** Whether the capability is granted: in the request scope and in the program scope. */
export function scopeAllows(context: ServiceContext, token: string): boolean {
  const s = restricted.get(context);
  return context.scope.includes(token) && (s === undefined || s.has(token));
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Parse u8 count + tokens; trailing bytes are ignored, as Gate does. */
function parseList(b: Uint8Array, fail: (message: string) => Error): string[] {
  if (b.length < 1) throw fail('scope encoding is too short');
  const count = b[0];
  let off = 1;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (off >= b.length) throw fail('scope encoding is too short');
    const n = b[off++];
    if (off + n > b.length) throw fail('scope encoding is too short');
    const token = decoder.decode(b.subarray(off, off + n));
    off += n;
    if (!isValidScopeToken(token)) throw fail(`invalid scope token: ${JSON.stringify(token)}`);
    out.push(token);
  }
  return out;
}

function encodeList(tokens: readonly string[]): Uint8Array {
  const parts = tokens.slice(0, 255).map((t) => encoder.encode(t));
  const out = new Uint8Array(1 + parts.reduce((a, p) => a + 1 + p.length, 0));
  out[0] = parts.length;
  let off = 1;
  for (const p of parts) {
    out[off++] = p.length;
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function restrict(context: ServiceContext, tokens: readonly string[]): void {
  const current = restricted.get(context);
  const next = new Set(current === undefined ? tokens : tokens.filter((t) => current.has(t)));
  restricted.set(context, next);
}

function saveRestriction(context: ServiceContext): Uint8Array {
  const s = restricted.get(context);
  return s === undefined ? new Uint8Array(0) : encodeList([...s].sort(compareUtf8));
}

export const scopeService: ServiceFactory = {
  name: SCOPE_NAME,
  revision: SCOPE_REVISION,
  streams: false,
  create(context, config, saved) {
    // Each run starts unrestricted; a saved restriction is applied again.
    restricted.delete(context);
    if (saved !== null && saved.length > 0) {
      restrict(context, parseList(saved, (m) => new SavedStateError(m)));
    }
    const reply = (content: Uint8Array): Uint8Array => {
      const p = makePacket(HEADER_SIZE + content.length, config.code, Domain.CALL);
      p.set(content, HEADER_SIZE);
      return p;
    };
    return {
      start() {},
      handle(packet) {
        if (packetDomain(packet) !== Domain.CALL) return; // info: ignored
        const content = packet.subarray(HEADER_SIZE);
        switch (content[0]) {
          case SCOPE_CALL_RESTRICT:
            restrict(context, parseList(content.subarray(1), (m) => new AbiViolation(m)));
            return reply(new Uint8Array(2)); // i16 error 0
          default:
            return reply(new Uint8Array(0));
        }
      },
      shutdown() {
        const state = saveRestriction(context);
        restricted.delete(context);
        return state;
      },
      hibernate: () => ({ state: saveRestriction(context), idle: true }),
    };
  },
};
