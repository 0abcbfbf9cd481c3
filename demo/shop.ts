// The demo shop's services: one small node:http process per service instance, started as
// `node demo/shop.ts SERVICE PORT [VERSION]`. Each calls its dependencies through its own sidecar's
// outbound listener (FAULTLINE_OUTBOUND) with the destination in the Host header, as a meshed app does.
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
      callService('payments', '/quote', 800, forward),
      callService('stock', '/level', undefined, forward),
    ]);
    return { items: 2, quote, stock };
  },
  payments: async () => {
    await work(version === 'v2' ? 4 : 2);
    return { version, amount: 42 };
  },
  stock: async () => {
    await work(1);
    return { level: 100 - (served % 7) };
  },
};

const behaviour = behaviours[service];
if (!behaviour || !port) {
  process.stderr.write(`usage: node demo/shop.ts (${Object.keys(behaviours).join('|')}) PORT [VERSION]\n`);
  process.exit(2);
}

// Started by `faultline demo` with stdin as a pipe: when the demo goes, however it goes, so does the shop.
if (!process.stdin.isTTY) process.stdin.on('close', () => process.exit(0)).resume();

createServer((req, res: ServerResponse) => {
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
