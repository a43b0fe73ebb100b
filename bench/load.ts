// HTTP load generator for the server bench, run in a worker thread so that
// the clients do not take the server's event loop. Keep-alive connections,
// one per client; each client sends its next request when the previous
// answer has been read to its end (trailers included).

import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoadRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  /** The response body every call must produce. */
  expect: string;
  clients: number;
  /** Stop after this many calls in all, or ... */
  calls: number;
  /** ... after this many milliseconds, whichever comes first. */
  durationMs: number;
}

export interface LoadResult {
  /** Milliseconds per call, in completion order. */
  latencies: number[];
  elapsedMs: number;
  errors: number;
  firstError?: string;
}

/** Gate-Status trailers of a call that ended normally with result 0. */
const NORMAL_END = new Set(['{"state":"HALTED"}', '{"state":"TERMINATED"}']);

function callOnce(agent: http.Agent, req: LoadRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = http.request(req.url, { method: req.method, headers: req.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const status = res.trailers['gate-status'];
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        else if (text !== req.expect) reject(new Error(`unexpected body ${JSON.stringify(text.slice(0, 100))}`));
        else if (status !== undefined && !NORMAL_END.has(status)) reject(new Error(`Gate-Status ${status}`));
        else resolve();
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body ?? undefined);
  });
}

export async function runLoad(req: LoadRequest): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: req.clients });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + req.durationMs;
  const client = async (): Promise<void> => {
    while (started < req.calls && performance.now() < deadline) {
      started++;
      const t = performance.now();
      try {
        await callOnce(agent, req);
        latencies.push(performance.now() - t);
      } catch (error) {
        errors++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: req.clients }, client));
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  return { latencies, elapsedMs, errors, firstError };
}

if (parentPort && workerData) {
  const port = parentPort;
  runLoad(workerData as LoadRequest).then(
    (result) => port.postMessage(result),
    (error: unknown) => port.postMessage({ latencies: [], elapsedMs: 0, errors: 1, firstError: String(error) }),
  );
}
