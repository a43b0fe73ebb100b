// Node transport for the localhost service: node:http/https, so it can
// reach Unix sockets and set the Host header (fetch can do neither). No
// redirects are followed (node:http never does) and the body is read only up
// to the limit.

import http from 'node:http';
import https from 'node:https';
import type { LocalhostTransport, TransportResponse } from '../localhost.ts';

export const nodeHttpTransport: LocalhostTransport = (req) =>
  new Promise<TransportResponse>((resolve, reject) => {
    const { target } = req;
    const headers: Record<string, string> = { host: req.host ?? target.authority };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    if (req.body !== undefined) headers['content-length'] = String(req.body.length);
    const common = { method: req.method, path: req.path, headers, signal: req.signal, agent: false as const };
    let request: http.ClientRequest;
    try {
      if (target.socketPath !== undefined) {
        request = http.request({ ...common, socketPath: target.socketPath });
      } else {
        // URL parsing splits host and port, IPv6 literals included.
        const u = new URL(`${target.scheme}://${target.authority}`);
        const options = { ...common, hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || undefined };
        request = target.scheme === 'https' ? https.request(options) : http.request(options);
      }
    } catch (e) {
      reject(e); // e.g. an invalid header value
      return;
    }
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n > req.maxBodySize) {
          res.destroy(new Error('response body too large'));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        const contentType = res.headers['content-type'];
        resolve({
          status: res.statusCode ?? 502,
          body: new Uint8Array(Buffer.concat(chunks)),
          ...(contentType ? { contentType } : {}),
        });
      });
    });
    request.end(req.body === undefined ? undefined : Buffer.from(req.body));
  });
