// The bench module contract and small measuring helpers shared by the bench
// modules (see README.md). Nothing here asserts on time: benches report
// figures, people read them.

import os from 'node:os';

/** One measured figure. */
export interface Row {
  /** What was benchmarked, usually the module name ("runtime", "server"). */
  group: string;
  /** What this figure is ("cpu-heavy hash (plain V8)"). */
  name: string;
  value: number;
  /** "ms", "µs", "MB/s", "KB", "x", "/s", ... */
  unit: string;
  /** Anything that helps read the figure (sizes, sample counts, spread). */
  note?: string;
}

/** What the runner passes to a bench module's run(). */
export interface BenchOptions {
  /** Fewer samples: a smoke run that checks the bench still works, not a measurement. */
  quick: boolean;
  /** Report progress (to stderr, so that stdout keeps only the table). */
  progress(message: string): void;
}

/** What a bench module (bench/NAME.bench.ts) exports. */
export interface BenchModule {
  run(options: BenchOptions): Promise<Row[]>;
}

export interface MachineFacts {
  node: string;
  v8: string;
  platform: string;
  cpu: string;
  cores: number;
  memory: string;
  loadavg: string;
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    loadavg: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

// ---- statistics -----------------------------------------------------------

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Linear interpolation between closest ranks; p in [0, 100]. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** "n=7, 581–610 ms": sample count and range, for a row's note. */
export function spread(samples: readonly number[], unit = 'ms'): string {
  return `n=${samples.length}, ${formatValue(Math.min(...samples))}–${formatValue(Math.max(...samples))} ${unit}`;
}

// ---- timing ---------------------------------------------------------------

/** Milliseconds taken by fn. */
export async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Wall-clock and CPU milliseconds taken by fn. */
export interface Timing {
  wall: number;
  /**
   * CPU time of this process (all threads, user + system) meanwhile. On a
   * machine shared with other work, the CPU time of a CPU-bound task stays
   * close to what it costs, while its wall time includes waiting for a core.
   */
  cpu: number;
}

export async function timeCpu(fn: () => unknown): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/**
 * Run the variants in turn (a, b, c, a, b, c, ...) so that drift in machine
 * load hits all of them alike; `warmup` rounds are run and discarded first.
 * Returns the samples (wall and CPU ms) per variant name.
 */
export async function interleave(
  variants: Readonly<Record<string, () => unknown>>,
  rounds: number,
  warmup = 1,
): Promise<Record<string, { wall: number[]; cpu: number[] }>> {
  const samples: Record<string, { wall: number[]; cpu: number[] }> = {};
  for (const name of Object.keys(variants)) samples[name] = { wall: [], cpu: [] };
  for (let round = 0; round < warmup + rounds; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      const t = await timeCpu(fn);
      if (round >= warmup) {
        samples[name].wall.push(t.wall);
        samples[name].cpu.push(t.cpu);
      }
    }
  }
  return samples;
}

// ---- formatting -----------------------------------------------------------

/** About three significant digits, no exponent notation. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.01) return v.toFixed(3);
  return v.toPrecision(2);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

// ---- summaries ------------------------------------------------------------

/** Median, p99 and the note that says how many samples they came from. */
export interface Summary {
  median: number;
  p99: number;
  note: string;
}

export function summarize(samples: readonly number[], unit = 'ms'): Summary {
  return { median: median(samples), p99: percentile(samples, 99), note: spread(samples, unit) };
}

/** "target < 2 ms: met" or "... MISSED", for a row's note. */
export function target(value: number, op: '<' | '≤' | '>' | '≥', limit: number, unit: string): string {
  const met = op === '<' ? value < limit : op === '≤' ? value <= limit : op === '>' ? value > limit : value >= limit;
  return `target ${op} ${formatValue(limit)}${unit === 'x' ? 'x' : ` ${unit}`}: ${met ? 'met' : 'MISSED'}`;
}

/** Join the non-empty parts of a note. */
export function note(...parts: (string | undefined | false)[]): string {
  return parts.filter(Boolean).join('; ');
}

/** Let pending I/O, timers and immediates run (between samples). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
