// Authorization at the destination: rules by source, method and path; what they do not allow is a
// 403 with flag RBAC and an event; a new snapshot changes them live; a service without rules takes
// every caller.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { send } from '../helpers/client.ts';
import { sidecarEntry, snapshotOf, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

describe('authorization', function () {
  this.timeout(20_000);
  let payments: Upstream;
  let checkout: Sidecar;
  let frontend: Sidecar;
  let paymentsSidecar: Sidecar;
  let config: Record<string, unknown>;
  const denied: MeshEvents['authz.denied'][] = [];

  const charge = (from: Sidecar, method = 'POST', path = '/charge/1') =>
    send(from.addresses.outbound!, { method, path, headers: { host: 'payments' }, body: method === 'POST' ? '{}' : undefined });

  before(async () => {
    payments = await startUpstream('payments');
    config = {
      mesh: { name: 'authz' },
      services: [
        { name: 'checkout', endpoints: [{ address: await freeAddress() }] },
        { name: 'frontend', endpoints: [{ address: await freeAddress() }] },
        { name: 'payments', endpoints: [{ address: payments.address }] },
      ],
      sidecars: [],
      authorization: [{ destination: 'payments', allow: [{ sources: ['checkout'], methods: ['POST'], paths: [{ prefix: '/charge' }] }, { methods: ['GET'], paths: [{ exact: '/healthz' }] }] }],
    };
    const services = config.services as { endpoints: { address: string }[] }[];
    config.sidecars = [
      await sidecarEntry('checkout', services[0]!.endpoints[0]!.address),
      await sidecarEntry('frontend', services[1]!.endpoints[0]!.address),
      await sidecarEntry('payments', payments.address),
    ];
    [checkout, frontend, paymentsSidecar] = await Promise.all(['checkout', 'frontend', 'payments'].map((name) => startSidecar(config, name)));
    paymentsSidecar.events.on('authz.denied', (e) => denied.push(e));
  });

  after(async () => {
    for (const s of [checkout, frontend, paymentsSidecar]) await s.close();
    await payments.close();
  });

  it('allows what a rule allows in full, and nothing else: 403 RBAC with an event', async () => {
    expect((await charge(checkout)).status).to.equal(200);
    expect((await charge(frontend, 'GET', '/healthz')).status).to.equal(200);
    const wrongSource = await charge(frontend);
    expect([wrongSource.status, wrongSource.headers['x-faultline-flags']]).to.deep.equal([403, 'RBAC']);
    expect((await charge(checkout, 'GET', '/charge/1')).status).to.equal(403);
    expect((await charge(checkout, 'POST', '/refund/1')).status).to.equal(403);
    expect(denied.map((e) => [e.source, e.method, e.path])).to.deep.equal([
      ['frontend', 'POST', '/charge/1'],
      ['checkout', 'GET', '/charge/1'],
      ['checkout', 'POST', '/refund/1'],
    ]);
    expect(payments.seen.filter((r) => r.url !== '/healthz')).to.have.length(1);
  });

  it('applies a rule change with the next snapshot, no restart', async () => {
    paymentsSidecar.apply(snapshotOf({ ...config, authorization: [{ destination: 'payments', allow: [{ sources: ['checkout', 'frontend'] }] }] }));
    expect((await charge(frontend)).status).to.equal(200);
    paymentsSidecar.apply(snapshotOf({ ...config, authorization: [] }));
    expect((await charge(frontend, 'DELETE', '/anything')).status).to.equal(200);
  });

  it('refuses rules naming unknown services, at load', () => {
    expect(() => snapshotOf({ ...config, authorization: [{ destination: 'payments', allow: [{ sources: ['nobody'] }] }] })).to.throw(/authorization\[0\]\.allow\[0\]\.sources\[0\]: no service named "nobody"/);
  });
});
