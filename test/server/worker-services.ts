// Services for the instance threads of the WorkerExecutor tests: loaded in
// each worker through WorkerExecutorOptions.services.

import { echoService, Registry } from '../../src/services/index.ts';

export function createRegistry(options: { test?: boolean }): Registry {
  const registry = new Registry();
  if (options.test) registry.register(echoService);
  return registry;
}
