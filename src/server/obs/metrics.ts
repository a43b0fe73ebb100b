// Prometheus text exposition of a few counters, gauges and histograms.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

class Counter {
  readonly values = new Map<string, number>();
  inc(labels: Labels = {}, n = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + n);
  }
}

class Histogram {
  readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  readonly buckets: number[];
  constructor(buckets: number[]) {
    this.buckets = buckets;
  }
  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]++;
    });
    s.sum += value;
    s.count++;
  }
}

export interface GaugeSource {
  /** Current gauge values, computed at scrape time. */
  (): { name: string; help: string; values: [Labels, number][] }[];
}

export class Metrics {
  readonly requests = new Counter();
  readonly requestSeconds = new Histogram(LATENCY_BUCKETS);
  readonly calls = new Counter();
  readonly callSeconds = new Histogram(LATENCY_BUCKETS);
  readonly events = new Counter();
  readonly authFailures = new Counter();
  private readonly gauges: GaugeSource[] = [];

  addGauges(source: GaugeSource): void {
    this.gauges.push(source);
  }

  render(): string {
    const out: string[] = [];
    const counter = (name: string, help: string, c: Counter) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of c.values) out.push(`${name}${labels} ${v}`);
    };
    const histogram = (name: string, help: string, h: Histogram) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      for (const [labels, s] of h.series) {
        const inner = labels.slice(1, -1);
        const join = (extra: string) => `{${inner ? `${inner},` : ''}${extra}}`;
        h.buckets.forEach((b, i) => out.push(`${name}_bucket${join(`le="${b}"`)} ${s.counts[i]}`));
        out.push(`${name}_bucket${join('le="+Inf"')} ${s.count}`);
        out.push(`${name}_sum${labels} ${s.sum}`, `${name}_count${labels} ${s.count}`);
      }
    };
    counter('gate_http_requests_total', 'HTTP requests by route and status code.', this.requests);
    histogram('gate_http_request_duration_seconds', 'HTTP request latency by route.', this.requestSeconds);
    counter('gate_calls_total', 'Program calls (call action) by transport.', this.calls);
    histogram('gate_call_duration_seconds', 'Duration of call requests, upload to final status.', this.callSeconds);
    counter('gate_events_total', 'Server events by type.', this.events);
    counter('gate_auth_failures_total', 'Authentication failures by type.', this.authFailures);
    for (const source of this.gauges) {
      for (const g of source()) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const [labels, v] of g.values) out.push(`${g.name}${labelText(labels)} ${v}`);
      }
    }
    const mem = process.memoryUsage();
    out.push('# HELP process_resident_memory_bytes Resident memory size in bytes.', '# TYPE process_resident_memory_bytes gauge');
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    out.push('# HELP nodejs_heap_used_bytes V8 heap in use.', '# TYPE nodejs_heap_used_bytes gauge');
    out.push(`nodejs_heap_used_bytes ${mem.heapUsed}`);
    out.push('# HELP nodejs_external_memory_bytes Memory outside the V8 heap (includes wasm memories).', '# TYPE nodejs_external_memory_bytes gauge');
    out.push(`nodejs_external_memory_bytes ${mem.external + mem.arrayBuffers}`);
    return `${out.join('\n')}\n`;
  }
}
