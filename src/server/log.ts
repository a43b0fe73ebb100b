// Structured logs: one JSON object per line on stderr (or a given sink).

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type Fields = Record<string, unknown>;

export class Logger {
  private readonly min: number;
  private readonly sink: (line: string) => void;

  constructor(level: string = 'info', sink: (line: string) => void = (line) => process.stderr.write(line)) {
    if (!(level in order)) throw new Error(`unknown log.level: ${JSON.stringify(level)}`);
    this.min = order[level as Level];
    this.sink = sink;
  }

  log(level: Exclude<Level, 'silent'>, msg: string, fields: Fields = {}): void {
    if (order[level] < this.min) return;
    const record = { time: new Date().toISOString(), level, msg, ...fields };
    this.sink(`${JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
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

  /** A Gate-style event record (server.md §9). */
  event(type: string, fields: Fields = {}): void {
    this.log(type.startsWith('FAIL_INTERNAL') ? 'error' : 'info', 'server: event', { type, ...fields });
  }
}
