// The Web Worker that runs a page's programs (bundled as worker.js; the page
// starts it with `new BrowserRuntime(new Worker(url, { type: 'module' }))`).

import type { Port } from './protocol.ts';
import { WorkerHost } from './worker-host.ts';

new WorkerHost(globalThis as unknown as Port);
