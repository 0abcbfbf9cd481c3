// The HTTP/2 benchmark's upstream: a node:http2 cleartext server (prior knowledge, as a gRPC server
// without TLS) answering every stream 200 with a 1 KiB body, on 127.0.0.1 and 127.0.0.2 (same port).
// Run as its own process; prints its port on stdout.
import { createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';

const BODY = Buffer.alloc(1024, 'x');

function server(): Http2Server {
  const s = createServer({ settings: { maxConcurrentStreams: 1_000 } });
  s.on('session', (session) => session.on('error', () => {}));
  s.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': BODY.length });
    stream.end(BODY);
  });
  return s;
}

const primary = server();
primary.listen(0, '127.0.0.1', () => {
  const { port } = primary.address() as AddressInfo;
  server().listen(port, '127.0.0.2', () => process.stdout.write(`${port}\n`));
});
