// The demo shop's services: one small process per service instance, started as
// `node demo/shop.ts SERVICE PORT [VERSION]` — node:http servers, but payments is a gRPC service
// (@grpc/grpc-js). Each calls its dependencies through its own sidecar's outbound listener
// (FAULTLINE_OUTBOUND) with the destination in the Host header (gRPC: the channel's authority), as a
// meshed app does.
import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'undici';

const [service = '', port = '', version = 'v1'] = process.argv.slice(2);
const outbound = process.env.FAULTLINE_OUTBOUND ?? '';

/** A call to another service through the sidecar; `timeoutMs` undefined means no timeout at all. */
async function callService(name: string, path: string, timeoutMs: number | undefined, headers: Record<string, string>): Promise<unknown> {
  const response = await request(`http://${outbound}${path}`, {
    headers: { host: name, ...headers },
    ...(timeoutMs !== undefined && { signal: AbortSignal.timeout(timeoutMs) }),
  });
  const body = await response.body.json();
  if (response.statusCode >= 400) throw Object.assign(new Error(`${name} answered ${response.statusCode}`), { status: response.statusCode, body });
  return body;
}

interface QuoteRequest {
  items: number;
}
interface Quote {
  version: string;
  amount: number;
}

/**
 * payments' gRPC service, `shop.Payments/Quote`, defined by hand with JSON messages: the mesh reads
 * gRPC's framing, headers and trailers, never the messages, so protobuf would add a .proto and a loader
 * (@grpc/proto-loader) for nothing the demo shows.
 */
const json = <T>() => ({ serialize: (value: T) => Buffer.from(JSON.stringify(value)), deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as T });
const quoteRequest = json<QuoteRequest>();
const quote = json<Quote>();
const PAYMENTS = {
  Quote: {
    path: '/shop.Payments/Quote',
    requestStream: false,
    responseStream: false,
    requestSerialize: quoteRequest.serialize,
    requestDeserialize: quoteRequest.deserialize,
    responseSerialize: quote.serialize,
    responseDeserialize: quote.deserialize,
  },
} satisfies grpc.ServiceDefinition;

/**
 * A gRPC channel to payments through the sidecar: the target is the outbound listener, the authority
 * names the service (what the mesh routes on), insecure credentials mean HTTP/2 cleartext with prior
 * knowledge, which the outbound listener takes on the same port as HTTP/1.1.
 */
let payments: grpc.Client | undefined;

/** Payments' Quote through the sidecar, with a deadline of `timeoutMs`. */
function callPayments(timeoutMs: number, headers: Record<string, string>): Promise<Quote> {
  payments ??= new grpc.Client(outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' });
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
  const { path, requestSerialize, responseDeserialize } = PAYMENTS.Quote;
  return new Promise((resolve, reject) => {
    payments!.makeUnaryRequest(path, requestSerialize, responseDeserialize, { items: 2 }, metadata, { deadline: Date.now() + timeoutMs }, (error, reply) => {
      if (error) reject(Object.assign(new Error(`payments answered ${grpc.status[error.code]}: ${error.details}`), { body: { grpcStatus: error.code } }));
      else resolve(reply!);
    });
  });
}

/** A little work, so latency is not zero; deterministic per request count. */
function work(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const PROPAGATED = ['x-request-id', 'traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-faultline-cohort'];

let served = 0;
type Behaviour = (req: IncomingMessage, forward: Record<string, string>) => Promise<unknown>;

const behaviours: Record<string, Behaviour> = {
  // frontend → catalog and cart, each with its own timeout.
  frontend: async (_req, forward) => {
    const [catalog, cart] = await Promise.all([
      callService('catalog', '/items', 1_000, forward),
      callService('cart', '/cart', 1_500, forward),
    ]);
    return { page: 'home', catalog, cart };
  },
  catalog: async () => {
    await work(1 + (served % 3));
    return { items: ['kettle', 'teapot', 'mug'] };
  },
  // cart → payments (with a timeout) and stock (with none: the fragile call a game day should find).
  cart: async (_req, forward) => {
    const [quote, stock] = await Promise.all([
      callPayments(800, forward),
      callService('stock', '/level', undefined, forward),
    ]);
    return { items: 2, quote, stock };
  },
  stock: async () => {
    await work(1);
    return { level: 100 - (served % 7) };
  },
};

/** payments: a gRPC server (HTTP/2 cleartext; its sidecar reaches it so, by its `protocol: grpc`). */
function servePayments(): void {
  const server = new grpc.Server();
  server.addService(PAYMENTS, {
    Quote: (_call: grpc.ServerUnaryCall<QuoteRequest, Quote>, callback: grpc.sendUnaryData<Quote>) => {
      work(version === 'v2' ? 4 : 2).then(() => callback(null, { version, amount: 42 }));
    },
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
    if (error) throw error;
    process.stdout.write(`${service} ${version} listening on ${port} (gRPC)\n`);
  });
}

const behaviour = behaviours[service];
if ((!behaviour && service !== 'payments') || !port) {
  process.stderr.write(`usage: node demo/shop.ts (${[...Object.keys(behaviours), 'payments'].join('|')}) PORT [VERSION]\n`);
  process.exit(2);
}

// Started by `faultline demo` with stdin as a pipe: when the demo goes, however it goes, so does the shop.
if (!process.stdin.isTTY) process.stdin.on('close', () => process.exit(0)).resume();

if (!behaviour) servePayments();
else createServer((req, res: ServerResponse) => {
  if (req.url === '/healthz') return void res.end('ok');
  served++;
  // Propagate the request id, trace context and the game-day cohort, as apps that forward tracing
  // headers (and baggage) do.
  const forward: Record<string, string> = {};
  for (const name of PROPAGATED) {
    const value = req.headers[name];
    if (typeof value === 'string') forward[name] = value;
  }
  behaviour(req, forward).then(
    (body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ service, version, ...(body as object) }));
    },
    (error: Error & { status?: number }) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ service, error: error.message, cause: (error as { body?: unknown }).body }));
    },
  );
}).listen(Number(port), '127.0.0.1', () => process.stdout.write(`${service} ${version} listening on ${port}\n`));
