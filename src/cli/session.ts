// One command's connection: the local daemon (no address; started on
// demand) or a server (an address), with the credentials each expects.

import { existsSync } from 'node:fs';
import { daemonPaths } from '../daemon/paths.ts';
import { isLoopbackHost, parseAddress } from './address.ts';
import type { ClientConfig } from './config.ts';
import { CliError } from './errors.ts';
import { GateClient } from './http-client.ts';
import type { Ed25519Key } from './ssh-key.ts';
import { signedBearer, unsignedBearer } from './token.ts';

export interface Globals {
  config: ClientConfig;
  json: boolean;
}

export interface Session extends Globals {
  /** Talking to the local daemon. */
  local: boolean;
  /** A server address and no key file: calls go without credentials, uploading the module and pinning nothing. */
  anonymous: boolean;
  client: GateClient;
  /** Scope tokens added by -s on this command. */
  scope: string[];
}

/** Requests to servers are signed with a key: identityfile names one that exists. */
function hasKey(config: ClientConfig): boolean {
  return config.identityfile !== '' && existsSync(config.identityfile);
}

/** A client for the daemon (address undefined) or the server at the address. */
export async function openClient(address: string | undefined, config: ClientConfig, extraScope: readonly string[] = []): Promise<GateClient> {
  const scope = [...new Set([...config.scope, ...extraScope])];
  if (address === undefined) {
    // The daemon is started when its socket does not answer the first request (and that request is made again).
    const paths = daemonPaths();
    return new GateClient({
      target: { kind: 'unix', socket: paths.socket },
      authorization: () => unsignedBearer({ scope }),
      onUnreachable: async () => {
        // Loaded only now: spawning and waiting cost every command's start otherwise.
        const { ensureDaemon } = await import('./daemon-start.ts');
        await ensureDaemon(paths);
        return true;
      },
    });
  }
  const url = parseAddress(address);
  // The key reader loads only for a server: the daemon's tokens are unsigned.
  const { readIdentityFile } = await import('./ssh-key.ts');
  let key: Ed25519Key | undefined | null = null;
  const client: GateClient = new GateClient({
    target: { kind: 'remote', url },
    authorization: () => {
      if (config.identityfile === '') return undefined;
      if (key === null) key = readIdentityFile(config.identityfile);
      if (key === undefined) {
        // An empty identity file means unsigned local tokens, only for this machine over http.
        if (url.protocol !== 'http:' || !isLoopbackHost(url.hostname)) {
          throw new CliError(`${config.identityfile} is empty: unsigned tokens are only sent to http:// addresses on this machine`);
        }
        return unsignedBearer({ audience: client.audience, scope });
      }
      return signedBearer(key, { audience: client.audience, scope, nonce: config.nonce });
    },
  });
  return client;
}

export async function openSession(address: string | undefined, globals: Globals, extraScope: readonly string[] = []): Promise<Session> {
  const client = await openClient(address, globals.config, extraScope);
  return { ...globals, local: address === undefined, anonymous: address !== undefined && !hasKey(globals.config), client, scope: [...extraScope] };
}
