// Access policy: who may do what (auth.md §6), and which limits apply.
// `public` admits everyone (anonymous callers too, when allowed); `ssh`
// admits only the Ed25519 keys of an OpenSSH authorized_keys file.

import { readFileSync } from 'node:fs';
import type { Credentials } from './auth.ts';
import { principalId } from './auth.ts';
import type { Config, Limits } from '../config/config.ts';
import { HttpError } from './errors.ts';

/** Operations that may create or run instances, as Gate's policy methods distinguish them. */
export type Operation = 'authorize' | 'program' | 'instance' | 'program-instance';

export interface Policy {
  /**
   * Throw when the (possibly absent) caller may not proceed. `missing` makes
   * the 401 for an absent principal.
   */
  check(op: Operation, creds: Credentials | undefined, missing: () => Error): void;
  limits(creds: Credentials | undefined): Limits;
}

export class PermissionDenied extends HttpError {
  readonly reason: string;
  constructor(reason: string) {
    super(403, 'permission denied');
    this.reason = reason;
  }
}

export function createPolicy(config: Config): Policy {
  const limits: Limits = { ...config.principal };
  const anonymousLimits: Limits = { ...limits, timelimit: config.access.anonymoustimelimit || limits.timelimit };
  const pick = (creds: Credentials | undefined) => (creds ? limits : anonymousLimits);
  switch (config.access.policy) {
    case 'public':
      return {
        check(_op, creds, missing) {
          if (!creds && !config.access.anonymous) throw missing();
        },
        limits: pick,
      };
    case 'ssh': {
      const keys = readAuthorizedKeys(config.access.ssh.authorizedkeys);
      return {
        check(_op, creds, missing) {
          if (!creds) throw missing();
          if (creds.principal.id !== 'local' && !keys.has(creds.principal.id)) {
            throw new PermissionDenied(`principal ${creds.principal.id} is not in ${config.access.ssh.authorizedkeys}`);
          }
        },
        limits: pick,
      };
    }
    default:
      throw new Error(`unknown access.policy option: ${JSON.stringify(config.access.policy)}`);
  }
}

/** Principal ids of the ssh-ed25519 keys in an authorized_keys file; other lines are skipped. */
function readAuthorizedKeys(file: string): Set<string> {
  return parseAuthorizedKeys(readFileSync(file, 'utf8'));
}

function parseAuthorizedKeys(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const i = tokens.indexOf('ssh-ed25519');
    if (line.trim().startsWith('#') || i < 0 || i + 1 >= tokens.length) continue;
    const blob = Buffer.from(tokens[i + 1], 'base64');
    // string "ssh-ed25519", then string key (32 bytes), each with a u32 length.
    if (blob.length !== 4 + 11 + 4 + 32 || blob.readUInt32BE(0) !== 11 || blob.toString('ascii', 4, 15) !== 'ssh-ed25519' || blob.readUInt32BE(15) !== 32) {
      continue;
    }
    out.add(principalId(new Uint8Array(blob.subarray(19, 51))));
  }
  return out;
}
