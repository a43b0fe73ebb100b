// gate-server's own long flags on top of Gate's -f/-F/-d/-o (config.ts),
// and the listen address syntax of http.addr.

import { ConfigError } from './config.ts';
import type { Listen } from '../server.ts';

/** Our long flags become Gate-style -f / -o steps, processed in order. */
export function translateArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(listen|data-dir|config|database)(?:=(.*))?$/.exec(a);
    if (!m) {
      out.push(a);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag needs an argument: ${a}`);
    if (m[1] === 'config') out.push('-f', value);
    else if (m[1] === 'listen') out.push('-o', `http.addr=${value}`);
    else if (m[1] === 'database') out.push('-o', `database.url=${value}`);
    else out.push('-o', `server.datadir=${value}`);
  }
  return out;
}

/** http.addr as a listen address: `host:port`, `[v6]:port`, `unix:PATH` or an absolute path. */
export function listenAddress(addr: string): Listen {
  if (addr.startsWith('unix:')) return { path: addr.slice(5) };
  if (addr.startsWith('/') || addr.startsWith('.')) return { path: addr };
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new ConfigError(`http.addr must be host:port or a socket path: ${JSON.stringify(addr)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`port out of range: ${m[3]}`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}
