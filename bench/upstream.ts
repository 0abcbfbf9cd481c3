// The fixed upstream of every benchmark: a node:http server answering a 64-byte body (200, or 503 with
// `fail`), keep-alive on, on 127.0.0.1 and 127.0.0.2 (same port). `GET /__count` answers how many
// requests it served. Run as its own process; prints its port on stdout.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const status = process.argv[2] === 'fail' ? 503 : 200;
const BODY = Buffer.alloc(64, 'x');
let served = 0;

function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  if (req.url === '/__count') return void res.end(String(served));
  served++;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
}

const primary = createServer({ keepAliveTimeout: 65_000 }, answer);
primary.listen(0, '127.0.0.1', () => {
  const { port } = primary.address() as AddressInfo;
  createServer({ keepAliveTimeout: 65_000 }, answer).listen(port, '127.0.0.2', () => process.stdout.write(`${port}\n`));
});
