// The server-wide services of a Node server, from configuration: the
// built-ins of config.ts with the Node HTTP transport for localhost, plus
// external gRPC services (`service.grpc.commands` and `.targets`, Gate's
// syntax). This module is also what the worker executor loads in every
// instance thread: it exports createRegistry(config).

import { buildRegistry, ServiceConfigError, type BuildOptions, type ServicesConfig } from '../config.ts';
import { BroadcastPeerHub, type PeerNetwork } from '../peer.ts';
import type { Registry } from '../registry.ts';
import { connectExternalServices, type ExternalService } from './grpc/client.ts';
import { spawnExternalServices } from './grpc/spawn.ts';
import { nodeHttpTransport } from './localhost-http.ts';

export interface NodeServicesConfig extends ServicesConfig {
  peer?: ServicesConfig['peer'] & {
    /** BroadcastChannel joining the peer hubs of the server's workers (default `gate-peer`). */
    channel?: string;
  };
  grpc?: {
    /** Executables serving gRPC on fd 3: `"@/path argv0 args…"` or `"program args…"`. */
    commands?: string[];
    /** `"<grpc target> [insecure] [optional]"`, e.g. `"unix:/run/svc.sock insecure"`. */
    targets?: string[];
  };
}

export interface RunningServices {
  readonly registry: Registry;
  /** Close gRPC connections and stop spawned services. */
  close(): void;
}

const threadHubs = new Map<string, BroadcastPeerHub>();

/**
 * This thread's peer hub on the channel: instances in all threads of the
 * process that use the channel see each other (the server relays the
 * channel between its worker processes).
 */
export function threadPeerHub(channel = 'gate-peer'): BroadcastPeerHub {
  let hub = threadHubs.get(channel);
  if (!hub) {
    hub = new BroadcastPeerHub(channel);
    threadHubs.set(channel, hub);
  }
  return hub;
}

/** A target line: address, then the words `insecure` and `optional` in any order. */
export function parseTarget(line: string): { target: string; insecure: boolean; optional: boolean } {
  const [target, ...words] = line.trim().split(/\s+/);
  if (!target) throw new ServiceConfigError('service.grpc.targets: empty target');
  let insecure = false;
  let optional = false;
  for (const w of words) {
    if (w === 'insecure') insecure = true;
    else if (w === 'optional') optional = true;
    else throw new ServiceConfigError(`service.grpc.targets: unknown word ${JSON.stringify(w)} in ${JSON.stringify(line)}`);
  }
  return { target, insecure, optional };
}

/**
 * Start what the configuration asks for and build the registry. Commands are
 * started first, then targets dialled (as Gate does); a failing target marked
 * `optional` is logged and skipped, any other failure is an error.
 */
export async function startServices(
  config: NodeServicesConfig = {},
  options: { log?: (message: string) => void; peerHub?: PeerNetwork } = {},
): Promise<RunningServices> {
  const log = options.log ?? ((m: string) => console.error(m));
  const closers: (() => void)[] = [];
  const external: ExternalService[] = [];
  try {
    for (const command of config.grpc?.commands ?? []) {
      const spawned = await spawnExternalServices(command, { log: (line) => log(`service ${command}: ${line}`) });
      closers.push(() => spawned.close());
      external.push(...spawned.services);
    }
    for (const line of config.grpc?.targets ?? []) {
      const t = parseTarget(line);
      try {
        const conn = await connectExternalServices({ target: t.target, insecure: t.insecure });
        closers.push(() => conn.close());
        external.push(...conn.services);
      } catch (e) {
        if (!t.optional) throw e;
        log(`optional external services at ${t.target} skipped: ${(e as Error).message}`);
      }
    }
    const names = new Set<string>();
    for (const s of external) {
      if (names.has(s.factory.name)) throw new ServiceConfigError(`external service ${s.factory.name} offered twice`);
      names.add(s.factory.name);
    }
    const peerHub = config.peer?.enabled === true ? (options.peerHub ?? threadPeerHub(config.peer.channel)) : undefined;
    const build: BuildOptions = { localhostTransport: nodeHttpTransport, extra: external, peerHub };
    const registry = buildRegistry(config, undefined, build);
    return { registry, close: () => closers.forEach((c) => c()) };
  } catch (e) {
    closers.forEach((c) => c());
    throw e;
  }
}

/** Worker-thread entry point (see WorkerExecutorOptions.services). */
export async function createRegistry(config: NodeServicesConfig = {}): Promise<Registry> {
  return (await startServices(config)).registry;
}
