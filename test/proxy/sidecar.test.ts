// The sidecar's request path over real sockets: both ways of addressing the outbound listener,
// forwarding headers, the outbound → inbound → app path, mesh failures with their flags, timeouts,
// bodies and upgrades, and the admin listener.
import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

describe('sidecar request path', function () {
  let payments: Upstream;
  let checkoutApp: Upstream;
  let checkout: Sidecar;
  let paymentsSidecar: Sidecar;
  let down: string;

  before(async () => {
    payments = await startUpstream('payments');
    checkoutApp = await startUpstream('checkout');
    down = await freeAddress();
    const paymentsEntry = await sidecarEntry('payments', payments.address);
    const config = {
      mesh: { name: 'test' },
      services: [
        { name: 'checkout', endpoints: [{ address: checkoutApp.address }] },
        { name: 'payments', endpoints: [{ address: payments.address }] },
        { name: 'ledger', endpoints: [{ address: down }] },
        { name: 'slow', endpoints: [{ address: checkoutApp.address }] },
      ],
      routes: [
        { name: 'slow', match: { host: 'slow' }, destinations: [{ service: 'slow' }], timeout: '200ms' },
      ],
      sidecars: [await sidecarEntry('checkout', checkoutApp.address), paymentsEntry],
    };
    checkout = await startSidecar(config, 'checkout');
    paymentsSidecar = await startSidecar(config, 'payments');
  });

  after(async () => {
    await checkout.close();
    await paymentsSidecar.close();
    await payments.close();
    await checkoutApp.close();
  });

  it('routes by the Host header', async () => {
    const reply = await call(checkout.addresses.outbound!, 'payments', '/charge?amount=3');
    expect(reply.status).to.equal(200);
    expect(reply.json()).to.include({ name: 'payments', url: '/charge?amount=3' });
  });

  it('works as a forward proxy with absolute-form URIs (curl -x, HTTP_PROXY)', async () => {
    const reply = await send(checkout.addresses.outbound!, { path: 'http://payments/charge?amount=4', headers: { host: 'payments' } });
    expect(reply.status).to.equal(200);
    const seen = reply.json<{ url: string; headers: Record<string, string> }>();
    expect(seen.url).to.equal('/charge?amount=4');
    expect(seen.headers.host).to.equal('payments');
  });

  it('goes outbound → the destination sidecar inbound → its app, adding forwarding headers', async () => {
    const reply = await call(checkout.addresses.outbound!, 'payments', '/', { 'x-request-id': 'req-1' });
    const headers = reply.json<{ headers: Record<string, string> }>().headers;
    expect(headers['x-request-id']).to.equal('req-1');
    expect(headers['x-faultline-source']).to.equal('checkout');
    // one entry added by each hop: the outbound sidecar saw the app, the inbound saw the outbound sidecar
    expect(headers['x-forwarded-for']).to.equal('127.0.0.1, 127.0.0.1');
    expect(reply.headers['x-request-id']).to.equal('req-1');
  });

  it('adds a request id when there is none', async () => {
    const reply = await call(checkout.addresses.outbound!, 'payments');
    const id = reply.json<{ headers: Record<string, string> }>().headers['x-request-id'];
    expect(id).to.match(/^[0-9a-f-]{36}$/);
    expect(reply.headers['x-request-id']).to.equal(id);
  });

  it('removes hop-by-hop headers, including those named by Connection', async () => {
    const reply = await call(checkout.addresses.outbound!, 'payments', '/', {
      connection: 'keep-alive, x-hop',
      'x-hop': 'secret',
      'proxy-authorization': 'Basic Zm9v',
      te: 'trailers',
      'x-end-to-end': 'kept',
    });
    const headers = reply.json<{ headers: Record<string, string> }>().headers;
    expect(headers).to.not.have.any.keys('x-hop', 'proxy-authorization', 'te');
    expect(headers['x-end-to-end']).to.equal('kept');
  });

  it('answers 404 with flag NR when no route matches', async () => {
    const reply = await call(checkout.addresses.outbound!, 'nowhere', '/x');
    expect(reply.status).to.equal(404);
    expect(reply.headers['x-faultline-flags']).to.equal('NR');
    expect(reply.json<{ error: Record<string, string> }>().error).to.include({ code: 'FL_NO_ROUTE', flags: 'NR', sidecar: 'checkout' });
  });

  it('answers 503 with flag UF when the endpoint refuses connections', async () => {
    const reply = await call(checkout.addresses.outbound!, 'ledger');
    expect(reply.status).to.equal(503);
    expect(reply.headers['x-faultline-flags']).to.equal('UF');
    expect(reply.json<{ error: Record<string, string> }>().error).to.include({ code: 'FL_UPSTREAM_CONNECT_FAILURE', service: 'ledger', endpoint: down });
  });

  it('passes an app failure through unflagged, so it can be told from a mesh failure', async () => {
    payments.handler = (_req, res) => res.writeHead(500).end('app broke');
    try {
      const reply = await call(checkout.addresses.outbound!, 'payments');
      expect(reply.status).to.equal(500);
      expect(reply.text).to.equal('app broke');
      expect(reply.headers).to.not.have.property('x-faultline-flags');
    } finally {
      payments.handler = startUpstreamDefault;
    }
  });

  it('times out with 504 UT and cancels the upstream request, freeing its socket', async () => {
    let upstreamClosed = false;
    checkoutApp.handler = (req) => req.socket.once('close', () => (upstreamClosed = true));
    try {
      const started = Date.now();
      const reply = await call(checkout.addresses.outbound!, 'slow');
      const elapsed = Date.now() - started;
      expect(reply.status).to.equal(504);
      expect(reply.headers['x-faultline-flags']).to.equal('UT');
      expect(elapsed).to.be.within(190, 1_500);
      await waitFor(() => upstreamClosed, 2_000, 'the upstream socket to close');
    } finally {
      checkoutApp.handler = startUpstreamDefault;
    }
  });

  it('cancels the upstream request when the caller goes away, freeing its socket', async () => {
    let upstreamClosed = false;
    let reached = false;
    payments.handler = (req) => {
      reached = true;
      req.socket.once('close', () => (upstreamClosed = true));
    };
    try {
      const [host, port] = checkout.addresses.outbound!.split(':');
      const req = httpRequest({ host, port: Number(port), path: '/hang', headers: { host: 'payments' } });
      req.on('error', () => {});
      req.end();
      await waitFor(() => reached, 2_000, 'the request to reach the app');
      req.destroy();
      await waitFor(() => upstreamClosed, 2_000, 'the upstream socket to close');
    } finally {
      payments.handler = startUpstreamDefault;
    }
  });

  it('cuts the response to the caller when the upstream resets mid-body', async () => {
    payments.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': 1_000 });
      res.write('x'.repeat(100), () => res.socket!.destroy());
    };
    try {
      const failure = await send(checkout.addresses.outbound!, { headers: { host: 'payments' } }).then(() => undefined, (error: Error) => error);
      expect(failure, 'the caller must not get a complete response').to.be.instanceOf(Error);
    } finally {
      payments.handler = startUpstreamDefault;
    }
  });

  it('streams request bodies, chunked or with a length', async () => {
    payments.handler = (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.end(JSON.stringify({ bytes, te: req.headers['transfer-encoding'] ?? null })));
    };
    try {
      const body = Buffer.alloc(300_000, 7);
      const sized = await send(checkout.addresses.outbound!, { method: 'POST', path: '/', headers: { host: 'payments', 'content-length': body.length }, body });
      expect(sized.json()).to.deep.equal({ bytes: 300_000, te: null });
      const chunked = await send(checkout.addresses.outbound!, { method: 'POST', path: '/', headers: { host: 'payments', 'transfer-encoding': 'chunked' }, body });
      expect(chunked.json()).to.deep.equal({ bytes: 300_000, te: 'chunked' });
    } finally {
      payments.handler = startUpstreamDefault;
    }
  });

  it('passes protocol upgrades (WebSocket) through both hops', async () => {
    payments.server.once('upgrade', (req, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-path: ${req.url}\r\n\r\n`);
      socket.on('data', (data: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), data])));
    });
    const [host, port] = checkout.addresses.outbound!.split(':');
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest({ host, port: Number(port), path: '/ws', headers: { host: 'payments', connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('upgrade', (res, socket: Socket) => {
        expect(res.statusCode).to.equal(101);
        expect(res.headers['x-path']).to.equal('/ws');
        resolve(socket);
      });
      req.on('error', reject);
      req.end();
    });
    const echoed = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
    socket.write('hello');
    expect(await echoed).to.equal('echo:hello');
    socket.destroy();
  });

  it('refuses https:// targets of a forward proxy with 400 NS', async () => {
    const reply = await send(checkout.addresses.outbound!, { path: 'https://payments/charge', headers: { host: 'payments' } });
    expect(reply.status).to.equal(400);
    expect(reply.headers['x-faultline-flags']).to.equal('NS');
    expect(reply.text).to.include('only http:// targets are proxied');
  });

  it('refuses CONNECT tunnels with a clear answer', async () => {
    const [host, port] = checkout.addresses.outbound!.split(':');
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host, port: Number(port), method: 'CONNECT', path: 'payments:443' });
      req.on('connect', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode!);
      });
      req.on('response', (res) => resolve(res.statusCode!));
      req.on('error', reject);
      req.end();
    });
    expect(status).to.equal(405);
  });

  it('serves /healthz, /ready, /config and /endpoints on the admin listener', async () => {
    const admin = checkout.addresses.admin;
    expect((await send(admin, { path: '/healthz' })).text).to.equal('ok\n');
    const ready = await send(admin, { path: '/ready' });
    expect(ready.status).to.equal(200);
    expect(ready.json()).to.deep.equal({ ready: true, version: checkout.snapshot.version });
    const config = (await send(admin, { path: '/config' })).json<{ version: string; sidecar: string; routes: { name: string }[] }>();
    expect(config.version).to.equal(checkout.snapshot.version);
    expect(config.sidecar).to.equal('checkout');
    expect(config.routes.map((r) => r.name)).to.include.members(['slow', 'default-payments']);
    const endpoints = (await send(admin, { path: '/endpoints' })).json<{ services: { service: string; endpoints: { dial: string; available: boolean }[] }[] }>();
    const entry = endpoints.services.find((s) => s.service === 'payments')!;
    expect(entry.endpoints[0]).to.include({ dial: paymentsSidecar.addresses.inbound, available: true });
  });
});

function startUpstreamDefault(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ name: 'restored', method: req.method, url: req.url, headers: req.headers }));
}
