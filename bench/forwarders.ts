// Minimal forwarding cores, to choose the sidecar's by measurement: a bare node:http server forwarding
// with undici, with node:http's own client, and with http-proxy-middleware (no express). Run as its own
// process: `node bench/forwarders.ts undici|node-http|hpm UPSTREAM_PORT`; prints its port on stdout.
// The undici forwarder loads node:http and undici only (http-proxy-middleware is imported when 'hpm'
// runs), so that its RSS is the forwarder's own; bench:cost runs it as plain JS, built by esbuild
// (buildForwarders in bench/cost.ts), not from this file: Node's type stripping costs memory too.
import { Agent as HttpAgent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

const [kind, upstreamPort] = process.argv.slice(2);
const target = `http://127.0.0.1:${upstreamPort}`;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function undiciForwarder(): (req: IncomingMessage, res: ServerResponse) => void {
  const agent = new Agent({ keepAliveTimeout: 4_000 });
  return (req, res) => {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const key in req.headers) if (!HOP_BY_HOP.has(key)) headers[key] = req.headers[key];
    agent
      .request({ origin: target, path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body: req.method === 'GET' ? null : req })
      .then((upstream) => {
        const out: Record<string, string | string[] | undefined> = {};
        for (const key in upstream.headers) if (!HOP_BY_HOP.has(key)) out[key] = upstream.headers[key];
        res.writeHead(upstream.statusCode, out);
        upstream.body.pipe(res);
      })
      .catch(() => res.writeHead(502).end());
  };
}

function nodeHttpForwarder(): (req: IncomingMessage, res: ServerResponse) => void {
  const agent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  return (req, res) => {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const key in req.headers) if (!HOP_BY_HOP.has(key)) headers[key] = req.headers[key];
    const upstream = request({ host: '127.0.0.1', port: Number(upstreamPort), method: req.method, path: req.url, headers, agent }, (response) => {
      const out: Record<string, string | string[] | undefined> = {};
      for (const key in response.headers) if (!HOP_BY_HOP.has(key)) out[key] = response.headers[key];
      res.writeHead(response.statusCode!, out);
      response.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  };
}

async function hpmForwarder(): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const { createProxyMiddleware } = await import('http-proxy-middleware');
  // A fair chance: keep-alive to the upstream, no logging, no express.
  const proxy = createProxyMiddleware({ target, agent: new HttpAgent({ keepAlive: true }), logger: undefined });
  return (req, res) => void proxy(req, res, () => res.writeHead(404).end());
}

const handler = await { undici: undiciForwarder, 'node-http': nodeHttpForwarder, hpm: hpmForwarder }[kind as 'undici']();
const server = createServer(handler);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
// Exit on SIGTERM (the bench stops it so) through process.exit, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
