// The server bench's clients: autocannon in a process of its own (so that
// the clients take no time from the server), keep-alive connections, one
// request at a time each. Every response's time is recorded to the
// microsecond (autocannon's own histogram counts whole milliseconds).
// Usage: node bench/server/load.ts '<LoadRequest as JSON>'; prints a LoadResult as JSON.

import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

export interface LoadRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  /** A file whose bytes are every request's body. */
  bodyFile?: string;
  /** The response body every call must produce (others count as errors). */
  expect?: string;
  clients: number;
  seconds: number;
}

export interface LoadResult {
  calls: number;
  /** Calls per second over the run. */
  rate: number;
  /** Milliseconds per call: median and 99th percentile. */
  p50: number;
  p99: number;
  errors: number;
  /** Responses with a status other than 2xx. */
  non2xx: number;
}

const request = JSON.parse(process.argv[2]) as LoadRequest;
const times: number[] = [];
const run = autocannon({
  url: request.url,
  method: request.method as 'POST',
  headers: request.headers,
  body: request.bodyFile ? readFileSync(request.bodyFile) : undefined,
  expectBody: request.expect,
  connections: request.clients,
  duration: request.seconds,
});
run.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
  if (status >= 200 && status < 300) times.push(ms);
});
const result = await run;
times.sort((a, b) => a - b);
const at = (p: number) => (times.length === 0 ? NaN : times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]);
const out: LoadResult = {
  calls: result.requests.total,
  rate: result.requests.total / request.seconds,
  p50: at(50),
  p99: at(99),
  errors: result.errors + result.mismatches + result.timeouts,
  non2xx: result.non2xx,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
