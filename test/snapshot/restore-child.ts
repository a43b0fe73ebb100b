// Child process for the snapshot tests: restore the snapshot file given as
// the argument, run it to its end, print status and debug log as JSON.

import { readFile } from 'node:fs/promises';
import { nodeEngine } from '../../src/host/engine.ts';
import { ModuleCache } from '../../src/host/module-cache.ts';
import { restoreInstance } from '../../src/host/snapshot.ts';
import { Registry } from '../../src/services/index.ts';

const chunks: Uint8Array[] = [];
const program = await restoreInstance(new Uint8Array(await readFile(process.argv[2])), {
  cache: new ModuleCache(null),
  engine: nodeEngine(),
  registry: new Registry(),
  context: { instance: crypto.randomUUID(), scope: [] },
  debug: (c) => chunks.push(c),
});
const status = await program.run();
process.stdout.write(JSON.stringify({ status, log: Buffer.concat(chunks).toString() }));
