// The idle timeout cuts an upstream that goes silent — before its headers (504 UT) or mid-body — and
// frees its socket, while a slow but steady stream lasts as long as it keeps sending.
import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

describe('idle timeout', () => {
  let upstream: Upstream;
  let sidecar: Sidecar;

  before(async () => {
    upstream = await startUpstream('app');
    const config = {
      mesh: { name: 'idle' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'app', endpoints: [{ address: upstream.address }] }],
      routes: [{ name: 'app', match: { host: 'app' }, destinations: [{ service: 'app' }], idleTimeout: '200ms' }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'client');
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('answers 504 UT when the upstream sends nothing, and frees the socket', async () => {
    let closed = false;
    upstream.handler = (req) => req.socket.once('close', () => (closed = true));
    const started = Date.now();
    const reply = await call(sidecar.addresses.outbound!, 'app');
    expect([reply.status, reply.headers['x-faultline-flags']]).to.deep.equal([504, 'UT']);
    expect(reply.json<{ error: { code: string } }>().error.code).to.equal('FL_UPSTREAM_IDLE_TIMEOUT');
    expect(Date.now() - started).to.be.within(190, 1_500);
    await waitFor(() => closed, 2_000, 'the upstream socket to close');
  });

  it('cuts a response whose body stalls', async () => {
    upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': 1_000 });
      res.write('x'.repeat(10));
    };
    const [host, port] = sidecar.addresses.outbound!.split(':');
    const outcome = await new Promise<{ received: number; aborted: boolean }>((resolve) => {
      httpRequest({ host, port: Number(port), headers: { host: 'app' } }, (res) => {
        let received = 0;
        res.on('data', (c: Buffer) => (received += c.length));
        res.on('error', () => resolve({ received, aborted: true }));
        res.on('end', () => resolve({ received, aborted: res.complete === false }));
      }).end();
    });
    expect(outcome).to.deep.equal({ received: 10, aborted: true });
  });

  it('lets a slow, steady stream run longer than the idle timeout', async () => {
    upstream.handler = (_req, res) => {
      res.writeHead(200);
      let sent = 0;
      const timer = setInterval(() => {
        res.write('chunk;');
        if (++sent === 6) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
    };
    const started = Date.now();
    const reply = await call(sidecar.addresses.outbound!, 'app');
    expect(reply.status).to.equal(200);
    expect(reply.text).to.equal('chunk;'.repeat(6));
    expect(Date.now() - started).to.be.at.least(550);
  });
});
