// Circuit breakers in the request path over real sockets: limits give a fast 503 UO and queue no more
// than allowed; a failing destination trips the circuit, which the admin listener shows, and it closes
// again once the upstream recovers.
import { expect } from 'chai';
import type { Sidecar } from '../../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../../src/telemetry/events.ts';
import { call, send } from '../../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../../helpers/net.ts';

describe('circuit breaker layer', () => {
  let upstream: Upstream;
  let sidecar: Sidecar;
  const events: MeshEvents['breaker.state'][] = [];

  before(async () => {
    upstream = await startUpstream('app');
    const config = {
      mesh: { name: 'cb' },
      services: [
        { name: 'client', endpoints: [{ address: await freeAddress() }] },
        { name: 'limited', endpoints: [{ address: upstream.address }], circuitBreaker: { maxConnections: 2, maxPendingRequests: 1 } },
        {
          name: 'fragile',
          endpoints: [{ address: upstream.address }],
          circuitBreaker: { consecutiveFailures: 3, coolDown: { base: '300ms', max: '1s' } },
        },
      ],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'client');
    sidecar.events.on('breaker.state', (e) => events.push(e));
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('runs maxConnections at once, queues maxPendingRequests, refuses the rest at once with UO', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived = 0;
    upstream.handler = (_req, res) => {
      arrived++;
      void gate.then(() => res.end('done'));
    };
    const inFlight = [call(sidecar.addresses.outbound!, 'limited'), call(sidecar.addresses.outbound!, 'limited'), call(sidecar.addresses.outbound!, 'limited')];
    await waitFor(() => arrived === 2, 2_000, 'two requests at the upstream');
    // Refused, not queued: a queued one would wait for the release below, which comes after it.
    const refused = await call(sidecar.addresses.outbound!, 'limited');
    expect([refused.status, refused.headers['x-faultline-flags']]).to.deep.equal([503, 'UO']);
    expect(refused.json<{ error: { code: string } }>().error.code).to.equal('FL_UPSTREAM_OVERFLOW');
    expect(arrived, 'the third waits in the queue, not at the upstream').to.equal(2);
    release();
    expect((await Promise.all(inFlight)).map((r) => r.status)).to.deep.equal([200, 200, 200]);
  });

  it('trips on consecutive failures, refuses fast while open, and closes after a good probe', async () => {
    let healthy = false;
    let calls = 0;
    upstream.handler = (_req, res) => {
      calls++;
      res.writeHead(healthy ? 200 : 500).end();
    };
    for (let i = 0; i < 3; i++) expect((await call(sidecar.addresses.outbound!, 'fragile')).status).to.equal(500);
    const open = await call(sidecar.addresses.outbound!, 'fragile');
    expect([open.status, open.headers['x-faultline-flags'], calls]).to.deep.equal([503, 'UO', 3]);
    expect(open.json<{ error: { code: string } }>().error.code).to.equal('FL_CIRCUIT_OPEN');
    const view = (await send(sidecar.addresses.admin, { path: '/breakers' })).json<{ breakers: { service: string; state: string; trips: number }[] }>();
    expect(view.breakers.find((b) => b.service === 'fragile')).to.include({ state: 'open', trips: 1 });
    healthy = true;
    const openedAt = events.find((e) => e.to === 'open')!.time;
    await waitFor(async () => (await call(sidecar.addresses.outbound!, 'fragile')).status === 200, 3_000, 'the circuit to close');
    expect(Date.now() - openedAt).to.be.at.least(300);
    expect(events.map((e) => `${e.from}>${e.to}`)).to.deep.equal(['closed>open', 'open>half-open', 'half-open>closed']);
  });
});
