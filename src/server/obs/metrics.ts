// Prometheus text exposition of a few counters, gauges and histograms.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  // Counted on every request: plain values (the usual case) are written as they are.
  let out = '';
  for (const k in labels) {
    const v = labels[k];
    const value = /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
    out += `${out ? ',' : '{'}${k}="${value}"`;
  }
  return out ? `${out}}` : '';
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
    for (let i = this.buckets.length - 1; i >= 0 && value <= this.buckets[i]; i--) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
}

export interface GaugeSource {
  /** Current gauge values, computed at scrape time. */
  (): { name: string; help: string; values: [Labels, number][] }[];
}

/** Everything a process measured, as plain data: several processes' snapshots render as one (their sums). */
export interface MetricsSnapshot {
  counters: Record<string, [string, number][]>;
  histograms: Record<string, [string, { counts: number[]; sum: number; count: number }][]>;
  gauges: { name: string; help: string; values: [string, number][] }[];
  memory: { rss: number; heapUsed: number; external: number };
}

const COUNTERS: [keyof Metrics & string, string, string][] = [
  ['requests', 'gate_http_requests_total', 'HTTP requests by route and status code.'],
  ['calls', 'gate_calls_total', 'Program calls (call action) by transport.'],
  ['events', 'gate_events_total', 'Server events by type.'],
  ['authFailures', 'gate_auth_failures_total', 'Authentication failures by type.'],
];
const HISTOGRAMS: [keyof Metrics & string, string, string][] = [
  ['requestSeconds', 'gate_http_request_duration_seconds', 'HTTP request latency by route.'],
  ['callSeconds', 'gate_call_duration_seconds', 'Duration of call requests, upload to final status.'],
];

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

  snapshot(): MetricsSnapshot {
    const counters: MetricsSnapshot['counters'] = {};
    for (const [field, name] of COUNTERS) counters[name] = [...(this[field] as Counter).values];
    const histograms: MetricsSnapshot['histograms'] = {};
    for (const [field, name] of HISTOGRAMS) histograms[name] = [...(this[field] as Histogram).series].map(([k, v]) => [k, { ...v, counts: [...v.counts] }]);
    const gauges = this.gauges.flatMap((source) => source().map((g) => ({ name: g.name, help: g.help, values: g.values.map(([l, v]): [string, number] => [labelText(l), v]) })));
    const mem = process.memoryUsage();
    return { counters, histograms, gauges, memory: { rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external + mem.arrayBuffers } };
  }

  render(): string {
    return renderMetrics([this.snapshot()]);
  }
}

/** Prometheus text of the sums of several processes' snapshots. */
export function renderMetrics(snapshots: readonly MetricsSnapshot[]): string {
  const out: string[] = [];
  const sum = (pairs: Iterable<[string, number]>) => {
    const m = new Map<string, number>();
    for (const [k, v] of pairs) m.set(k, (m.get(k) ?? 0) + v);
    return m;
  };
  for (const [, name, help] of COUNTERS) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const [labels, v] of sum(snapshots.flatMap((s) => s.counters[name] ?? []))) out.push(`${name}${labels} ${v}`);
  }
  for (const [, name, help] of HISTOGRAMS) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    const series = new Map<string, { counts: number[]; sum: number; count: number }>();
    for (const [labels, s] of snapshots.flatMap((x) => x.histograms[name] ?? [])) {
      const t = series.get(labels);
      if (!t) series.set(labels, { ...s, counts: [...s.counts] });
      else {
        s.counts.forEach((c, i) => (t.counts[i] += c));
        t.sum += s.sum;
        t.count += s.count;
      }
    }
    for (const [labels, s] of series) {
      const inner = labels.slice(1, -1);
      const join = (extra: string) => `{${inner ? `${inner},` : ''}${extra}}`;
      LATENCY_BUCKETS.forEach((b, i) => out.push(`${name}_bucket${join(`le="${b}"`)} ${s.counts[i]}`));
      out.push(`${name}_bucket${join('le="+Inf"')} ${s.count}`);
      out.push(`${name}_sum${labels} ${s.sum}`, `${name}_count${labels} ${s.count}`);
    }
  }
  const gauges = new Map<string, { help: string; values: [string, number][] }>();
  for (const g of snapshots.flatMap((s) => s.gauges)) {
    const t = gauges.get(g.name);
    if (t) t.values.push(...g.values);
    else gauges.set(g.name, { help: g.help, values: [...g.values] });
  }
  for (const [name, g] of gauges) {
    out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
    for (const [labels, v] of sum(g.values)) out.push(`${name}${labels} ${v}`);
  }
  const total = (f: (m: MetricsSnapshot['memory']) => number) => snapshots.reduce((n, s) => n + f(s.memory), 0);
  out.push('# HELP process_resident_memory_bytes Resident memory size in bytes.', '# TYPE process_resident_memory_bytes gauge');
  out.push(`process_resident_memory_bytes ${total((m) => m.rss)}`);
  out.push('# HELP nodejs_heap_used_bytes V8 heap in use.', '# TYPE nodejs_heap_used_bytes gauge');
  out.push(`nodejs_heap_used_bytes ${total((m) => m.heapUsed)}`);
  out.push('# HELP nodejs_external_memory_bytes Memory outside the V8 heap (includes wasm memories).', '# TYPE nodejs_external_memory_bytes gauge');
  out.push(`nodejs_external_memory_bytes ${total((m) => m.external)}`);
  return `${out.join('\n')}\n`;
}
