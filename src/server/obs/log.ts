// Structured logs on stderr (or a given sink): JSON lines for machines, or
// readable lines for a person at a terminal (log.format; `auto` picks text
// when stderr is a terminal).

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type Fields = Record<string, unknown>;

export interface LoggerOptions {
  /** Where lines go (default stderr). */
  sink?: (line: string) => void;
  /** Default auto: text when the sink is a terminal's stderr, else JSON. */
  format?: string;
}

export class Logger {
  private readonly min: number;
  private readonly sink: (line: string) => void;
  private readonly text: boolean;

  constructor(level: string = 'info', sinkOrOptions: ((line: string) => void) | LoggerOptions = {}) {
    if (!(level in order)) throw new Error(`unknown log.level: ${JSON.stringify(level)} (debug, info, warn, error or silent)`);
    const options = typeof sinkOrOptions === 'function' ? { sink: sinkOrOptions, format: 'json' } : sinkOrOptions;
    const format = options.format ?? 'auto';
    if (format !== 'json' && format !== 'text' && format !== 'auto') throw new Error(`unknown log.format: ${JSON.stringify(format)} (json, text or auto)`);
    this.min = order[level as Level];
    this.sink = options.sink ?? ((line) => process.stderr.write(line));
    this.text = format === 'text' || (format === 'auto' && options.sink === undefined && process.stderr.isTTY === true);
  }

  /** Whether lines of this level are written (so that a caller can skip building them). */
  enabled(level: Exclude<Level, 'silent'>): boolean {
    return order[level] >= this.min;
  }

  log(level: Exclude<Level, 'silent'>, msg: string, fields: Fields = {}): void {
    if (order[level] < this.min) return;
    const time = new Date().toISOString();
    this.sink(this.text ? textLine(time, level, msg, fields) : `${JSON.stringify({ time, level, msg, ...fields }, plain)}\n`);
  }

  debug(msg: string, fields?: Fields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log('error', msg, fields);
  }

  /** A line logged by another process (a shard), as it was formatted there. */
  line(line: string): void {
    this.sink(line);
  }

  /** A Gate-style event record (server.md §9). */
  event(type: string, fields: Fields = {}): void {
    const level = type.startsWith('FAIL_INTERNAL') ? 'error' : 'info';
    if (this.enabled(level)) this.log(level, 'server: event', { type, ...fields });
  }
}

function plain(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** `12:34:56.789 INFO  server: event type=INSTANCE_STOP instance.status.state=HALTED`: nested fields dotted, text quoted when it has spaces. */
function textLine(time: string, level: string, msg: string, fields: Fields): string {
  const parts: string[] = [];
  const walk = (value: unknown, name: string) => {
    if (value === undefined) return;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, name ? `${name}.${k}` : k);
      return;
    }
    const s = typeof value === 'string' ? value : JSON.stringify(value, plain);
    parts.push(`${name}=${typeof value === 'string' && (s === '' || /[\s"=]/.test(s)) ? JSON.stringify(s) : s}`);
  };
  walk(fields, '');
  return `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}\n`;
}
