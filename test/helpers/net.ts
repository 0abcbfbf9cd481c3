// Real sockets on loopback for tests: free ports, upstream servers that record what they saw, and
// polling with a deadline instead of sleeping.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

/** Ports handed out in this process: the kernel may offer a closed one again, and a test needs distinct ones. */
const handedOut = new Set<number>();

/**
 * Ports below the kernel's ephemeral range (ip_local_port_range), where a test's listeners go. A
 * port the kernel hands out for `listen(0)` comes from that range, which is also where every
 * outgoing connection takes its local port: between the check and the test's own listen, a
 * connection could take it (seen: EADDRINUSE in CI). Below the range only listeners compete.
 */
const [FIRST, END] = ((): [number, number] => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (low > 12_000) return [10_000, low];
  } catch {
    // Not Linux: the kernel's choice (port 0) is the only one known to be free.
  }
  return [0, 0];
})();
let next = FIRST + Math.floor(Math.random() * (END - FIRST));

/** A free port on 127.0.0.1, checked by listening on it, never one handed out before in this process. */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const candidate = END === 0 || tries > END - FIRST ? 0 : next;
    if (END !== 0) next = next + 1 >= END ? FIRST : next + 1;
    if (candidate !== 0 && handedOut.has(candidate)) continue;
    const server = createNetServer();
    const port = await new Promise<number | undefined>((resolve) => {
      server.once('error', () => resolve(undefined));
      server.listen(candidate, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
    if (port === undefined) continue;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export async function freeAddress(): Promise<string> {
  return `127.0.0.1:${await freePort()}`;
}

export interface Upstream {
  readonly address: string;
  readonly server: Server;
  readonly seen: IncomingMessage[];
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

/** An HTTP server on loopback; by default it answers 200 with JSON naming itself and echoing the request. */
export async function startUpstream(name: string, address?: string): Promise<Upstream> {
  const target = address ?? (await freeAddress());
  const seen: IncomingMessage[] = [];
  const upstream: Upstream = {
    address: target,
    seen,
    handler: (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers }));
    },
    server: createServer((req, res) => {
      seen.push(req);
      upstream.handler(req, res);
    }),
    close: () => new Promise<void>((resolve) => {
      upstream.server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }),
  };
  // Upgraded sockets are not the HTTP server's any more; destroy every socket on close.
  const sockets = new Set<Socket>();
  upstream.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = Number(target.slice(target.lastIndexOf(':') + 1));
  await new Promise<void>((resolve) => upstream.server.listen(port, '127.0.0.1', resolve));
  return upstream;
}

/** Polls until `probe` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads NDJSON lines from a long-lived response until `enough` says so. */
export function readEvents(address: string, path: string, enough: (lines: Record<string, unknown>[]) => boolean): Promise<Record<string, unknown>[]> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path }, (res) => {
      let buffer = '';
      const lines: Record<string, unknown>[] = [];
      res.on('data', (chunk: Buffer) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) !== -1) {
          lines.push(JSON.parse(buffer.slice(0, newline)));
          buffer = buffer.slice(newline + 1);
        }
        if (enough(lines)) {
          req.destroy();
          resolve(lines);
        }
      });
    });
    req.on('error', (error) => (error.message === 'socket hang up' ? undefined : reject(error)));
    req.end();
  });
}
