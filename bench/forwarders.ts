// Minimal forwarding cores, to choose the sidecar's by measurement: a bare node:http server forwarding
// with undici, with node:http's own client, and with http-proxy-middleware (no express). Run as its own
// process: `node bench/forwarders.ts undici|undici-headers|node-http|hpm UPSTREAM_PORT`; prints its port on stdout.
// Mutual TLS, as between a sidecar pair under mTLS strict (undici only): `--tls-listen DIR` listens
// with DIR/cert.pem and DIR/key.pem and asks every caller for a certificate of DIR/ca.pem's;
// `--tls-upstream DIR` dials the upstream over TLS with that certificate (the chain checked, the name
// not: the mesh's certificates name a SPIFFE ID, not a host, which the sidecar compares instead).
// The undici forwarder loads node:http and undici only (http-proxy-middleware is imported when 'hpm'
// runs), so that its RSS is the forwarder's own; bench:cost runs it as plain JS, built by esbuild
// (buildForwarders in bench/wrk-nginx.ts), not from this file: Node's type stripping costs memory too.
import { Agent as HttpAgent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

const [kind, upstreamPort] = process.argv.slice(2);
const tlsOf = (flag: string) => (process.argv.includes(flag) ? readTls(process.argv[process.argv.indexOf(flag) + 1]!) : undefined);
const listenTls = await tlsOf('--tls-listen');
const upstreamTls = await tlsOf('--tls-upstream');
const target = `${upstreamTls ? 'https' : 'http'}://127.0.0.1:${upstreamPort}`;

async function readTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const { readFile } = await import('node:fs/promises');
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(`${dir}/${f}`, 'utf8')));
  return { ca: ca!, cert: cert!, key: key! };
}
// Loaded only for `undici-headers`: the plain undici forwarder's RSS stays node:http's and undici's.
const crypto = kind === 'undici-headers' ? await import('node:crypto') : undefined;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function undiciForwarder(meshHeaders = false): (req: IncomingMessage, res: ServerResponse) => void {
  const agent = new Agent({ keepAliveTimeout: 4_000, ...(upstreamTls && { connect: { ...upstreamTls, checkServerIdentity: () => undefined } }) });
  return (req, res) => {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const key in req.headers) if (!HOP_BY_HOP.has(key)) headers[key] = req.headers[key];
    const id = meshHeaders ? addMeshHeaders(headers, req) : undefined;
    agent
      .request({ origin: target, path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body: req.method === 'GET' ? null : req })
      .then((upstream) => {
        const out: Record<string, string | string[] | undefined> = {};
        for (const key in upstream.headers) if (!HOP_BY_HOP.has(key)) out[key] = upstream.headers[key];
        if (id !== undefined) {
          out['x-request-id'] ??= id;
          out['x-faultline-attempts'] = '1';
        }
        res.writeHead(upstream.statusCode, out);
        upstream.body.pipe(res);
      })
      .catch(() => res.writeHead(502).end());
  };
}

/**
 * `undici-headers`: the headers a faultline sidecar adds to every request it forwards (bench:cost's
 * config: forwarding, request id, caller, try, W3C trace context of an unsampled trace), made as
 * simply as they can be, so that what sending them costs in node:http and undici is counted apart
 * from the sidecar's layers (bench:instructions --cost).
 */
function addMeshHeaders(headers: Record<string, string | string[] | undefined>, req: IncomingMessage): string {
  const id = (headers['x-request-id'] as string | undefined) ?? crypto!.randomUUID();
  const forwarded = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = forwarded === undefined ? req.socket.remoteAddress : `${String(forwarded)}, ${req.socket.remoteAddress}`;
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-request-id'] = id;
  headers['x-faultline-source'] = 'client';
  headers['x-faultline-attempt'] = '1';
  const ids = traceIds();
  headers.traceparent = `00-${ids.slice(0, 32)}-${ids.slice(32)}-00`;
  return id;
}

// A trace id and a span id (48 hex digits) per request, cut from random bytes turned into hex 170
// requests' worth at a time, as the sidecar makes them (src/telemetry/tracing.ts).
const pool = Buffer.alloc(24 * 170);
let hex = '';
let used = 0;
function traceIds(): string {
  if (used === hex.length) {
    hex = crypto!.randomFillSync(pool).toString('hex');
    used = 0;
  }
  used += 48;
  return hex.slice(used - 48, used);
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

const handler = await { undici: () => undiciForwarder(), 'undici-headers': () => undiciForwarder(true), 'node-http': nodeHttpForwarder, hpm: hpmForwarder }[kind as 'undici']();
const server = listenTls
  ? (await import('node:https')).createServer({ ...listenTls, requestCert: true, rejectUnauthorized: true }, handler)
  : createServer(handler);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
// Exit on SIGTERM (the bench stops it so) through process.exit, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
