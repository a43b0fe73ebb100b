// Public surface of the services layer.

import { createCatalog } from './catalog.ts';
import type { OriginConnector } from './origin.ts';
import type { Registry } from './registry.ts';

export * from './registry.ts';
export * from './stream.ts';
export * from './origin.ts';
export * from './catalog.ts';
export * from './echo.ts';
export * from './varint.ts';
export * from './identity.ts';
export * from './random.ts';
export * from './scope.ts';
export * from './localhost.ts';
export * from './flat.ts';
export * from './peer.ts';
export * from './config.ts';

/**
 * The registry for one instance run, as Gate composes it (services.md §6.2):
 * a child of the server-wide registry with this run's origin connector and a
 * catalog that lists what this child offers.
 */
export function runRegistry(server: Registry, origin: OriginConnector): Registry {
  const run = server.child();
  run.registerOrReplace(origin);
  run.registerOrReplace(createCatalog(run));
  return run;
}
