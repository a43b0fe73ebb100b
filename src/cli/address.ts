// Gate's rule for the optional server address before the command: an
// argument with a "." or "://" is an address (example.net, https://host,
// http://localhost:6473); the scheme defaults to https.

import { CliError } from './errors.ts';

export function isAddress(arg: string): boolean {
  return arg.includes('.') || arg.includes('://');
}

export function parseAddress(arg: string): URL {
  let url: URL;
  try {
    url = new URL(arg.includes('://') ? arg : `https://${arg}`);
  } catch {
    throw new CliError(`invalid server address: ${arg}`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`unsupported address scheme: ${url.protocol.slice(0, -1)} (use http or https)`, 2);
  if (url.search || url.hash) throw new CliError(`server address must not have a query or fragment: ${arg}`, 2);
  return url;
}

/** True for names and literals that can only mean this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}
