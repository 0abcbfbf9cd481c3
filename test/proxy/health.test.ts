// Active health checks and the panic threshold, over real sockets: an endpoint failing its checks
// leaves the pool and comes back when it passes again.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

type EndpointView = { address: string; health: string; available: boolean };

async function endpointsOf(sidecar: Sidecar, service: string): Promise<EndpointView[]> {
  const body = (await send(sidecar.addresses.admin, { path: '/endpoints' })).json<{ services: { service: string; endpoints: EndpointView[] }[] }>();
  return body.services.find((s) => s.service === service)!.endpoints;
}

async function spread(sidecar: Sidecar, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const reply = await call(sidecar.addresses.outbound!, 'stock');
    const key = reply.status === 200 ? reply.json<{ name: string }>().name : `status ${reply.status}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

describe('active health checks', () => {
  let a: Upstream;
  let b: Upstream;
  let sidecar: Sidecar;
  let healthyA = true;
  const changes: MeshEvents['health.changed'][] = [];

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    const base = a.handler;
    a.handler = (req, res) => (req.url === '/healthz' && !healthyA ? res.writeHead(500).end() : base(req, res));
    const config = {
      mesh: { name: 'hc' },
      services: [
        { name: 'app', endpoints: [{ address: await freeAddress() }] },
        {
          name: 'stock',
          endpoints: [{ address: a.address }, { address: b.address }],
          healthCheck: { path: '/healthz', interval: '50ms', timeout: '200ms', unhealthyThreshold: 2, healthyThreshold: 2 },
        },
      ],
      sidecars: [await sidecarEntry('app', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'app');
    sidecar.events.on('health.changed', (e) => changes.push(e));
    await waitFor(() => sidecar.ready, 3_000, 'first health checks');
  });

  after(async () => {
    await sidecar.close();
    await a.close();
    await b.close();
  });

  it('balances over both endpoints while both pass', async () => {
    const seen = await spread(sidecar, 20);
    expect([...seen.keys()].sort()).to.deep.equal(['a', 'b']);
  });

  it('takes an endpoint out after unhealthyThreshold failures, then sends it nothing', async () => {
    healthyA = false;
    await waitFor(async () => (await endpointsOf(sidecar, 'stock')).find((e) => e.address === a.address)!.health === 'unhealthy', 3_000, 'a unhealthy');
    const seen = await spread(sidecar, 20);
    expect(Object.fromEntries(seen)).to.deep.equal({ b: 20 });
    expect(changes.at(-1)).to.include({ service: 'stock', endpoint: a.address, healthy: false, reason: 'status 500' });
  });

  it('brings it back after healthyThreshold passes (self-healing)', async () => {
    healthyA = true;
    await waitFor(async () => (await endpointsOf(sidecar, 'stock')).every((e) => e.available), 3_000, 'a back');
    const seen = await spread(sidecar, 20);
    expect([...seen.keys()].sort()).to.deep.equal(['a', 'b']);
    expect(changes.at(-1)).to.include({ endpoint: a.address, healthy: true });
  });

  it('marks an endpoint that is down at start unhealthy on its first failed check, and takes it in on its first pass', async () => {
    const missing = await freeAddress();
    const config = {
      mesh: { name: 'hc2' },
      services: [
        { name: 'app', endpoints: [{ address: await freeAddress() }] },
        {
          name: 'stock',
          endpoints: [{ address: missing }, { address: b.address }],
          healthCheck: { path: '/healthz', interval: '1s', timeout: '200ms', unhealthyThreshold: 3, healthyThreshold: 5 },
        },
      ],
      sidecars: [await sidecarEntry('app', await freeAddress())],
    };
    const second = await startSidecar(config, 'app');
    try {
      await waitFor(() => second.ready, 3_000, 'first checks');
      expect((await endpointsOf(second, 'stock')).map((e) => [e.address, e.health])).to.deep.equal([[missing, 'unhealthy'], [b.address, 'healthy']]);
      expect(Object.fromEntries(await spread(second, 10))).to.deep.equal({ b: 10 });
      const late = await startUpstream('late', missing);
      try {
        // healthyThreshold is 5, but an endpoint that never passed needs one pass; the interval is 1 s,
        // so wait for the second check only (bounded by a few intervals).
        await waitFor(async () => (await endpointsOf(second, 'stock')).every((e) => e.health === 'healthy'), 3_000, 'the late endpoint to come in');
        expect((await endpointsOf(second, 'stock')).find((e) => e.address === missing)!.health).to.equal('healthy');
      } finally {
        await late.close();
      }
    } finally {
      await second.close();
    }
  });
});

describe('panic threshold', () => {
  async function meshWithAllUnhealthy(panicThreshold: number) {
    const a = await startUpstream('a');
    const base = a.handler;
    a.handler = (req, res) => (req.url === '/healthz' ? res.writeHead(503).end() : base(req, res));
    const config = {
      mesh: { name: 'panic' },
      services: [
        { name: 'app', endpoints: [{ address: await freeAddress() }] },
        {
          name: 'stock',
          endpoints: [{ address: a.address }],
          healthCheck: { path: '/healthz', interval: '5s', timeout: '200ms' },
          healthyPanicThreshold: panicThreshold,
        },
      ],
      sidecars: [await sidecarEntry('app', await freeAddress())],
    };
    const sidecar = await startSidecar(config, 'app');
    await waitFor(() => sidecar.ready, 3_000, 'first checks');
    return { sidecar, close: async () => { await sidecar.close(); await a.close(); } };
  }

  it('answers 503 UH when no endpoint is healthy and panic is off (the default)', async () => {
    const mesh = await meshWithAllUnhealthy(0);
    try {
      const reply = await call(mesh.sidecar.addresses.outbound!, 'stock');
      expect(reply.status).to.equal(503);
      expect(reply.headers['x-faultline-flags']).to.equal('UH');
      expect(reply.json<{ error: { code: string } }>().error.code).to.equal('FL_NO_HEALTHY_UPSTREAM');
    } finally {
      await mesh.close();
    }
  });

  it('balances over all endpoints when too few are healthy and a panic threshold is set', async () => {
    const mesh = await meshWithAllUnhealthy(50);
    try {
      const reply = await call(mesh.sidecar.addresses.outbound!, 'stock');
      expect(reply.status).to.equal(200);
      expect(reply.json<{ name: string }>().name).to.equal('a');
    } finally {
      await mesh.close();
    }
  });
});
