// A test client on node:http, so requests are exactly what a test says (Host header, absolute-form
// targets as a forward proxy receives them, raw upgrades).
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export function send(
  address: string,
  options: { path?: string; method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends to a service by name through a sidecar's outbound listener, Host-header style. */
export function call(outbound: string, service: string, path = '/', headers: OutgoingHttpHeaders = {}): Promise<Reply> {
  return send(outbound, { path, headers: { host: service, ...headers } });
}

/** Runs `task` `count` times with at most `concurrency` at once; bounded in count (and by the caller's timeouts). */
export async function load<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
