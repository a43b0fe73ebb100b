// The ceiling of the server bench: a bare node:http server in a process of
// its own that reads the request body and answers "hello, world\n". It
// prints the port it listens on.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

const HELLO = 'hello, world\n';

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length });
    res.end(HELLO);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
