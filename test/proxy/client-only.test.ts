// Client-only workloads: a load generator, a batch job or an edge gateway calls services but serves
// none. Its service needs no endpoints and its sidecar no inbound listener or app; a call to a service
// with no endpoints (none at all, or none known yet) is 503 UH with its own code. What the config
// accepts and refuses of it: test/config/load.test.ts.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

describe('client-only workloads', function () {
  let payments: Upstream;
  let paymentsSidecar: Sidecar;
  let loadgen: Sidecar;

  before(async () => {
    payments = await startUpstream('payments');
    const config = {
      mesh: { name: 'test' },
      services: [
        { name: 'loadgen' },
        { name: 'payments', endpoints: [{ address: payments.address }] },
        { name: 'ledger', endpoints: [] },
      ],
      sidecars: [
        { service: 'loadgen', outbound: await freeAddress(), admin: await freeAddress() },
        await sidecarEntry('payments', payments.address),
      ],
    };
    loadgen = await startSidecar(config, 'loadgen');
    paymentsSidecar = await startSidecar(config, 'payments');
  });

  after(async () => {
    await loadgen.close();
    await paymentsSidecar.close();
    await payments.close();
  });

  it('runs a sidecar with no inbound listener and no app, whose service has no endpoints', async () => {
    expect(loadgen.addresses.inbound).to.equal(undefined);
    expect(loadgen.spec.app).to.equal(undefined);
    const ready = await send(loadgen.addresses.admin, { path: '/ready' });
    expect(ready.status).to.equal(200);
  });

  it('calls other services through its outbound listener', async () => {
    const reply = await call(loadgen.addresses.outbound!, 'payments', '/charge');
    expect(reply.status).to.equal(200);
    expect(reply.json()).to.include({ name: 'payments', url: '/charge' });
  });

  it('answers a call to a service with no endpoints with 503 UH, code FL_NO_ENDPOINTS', async () => {
    for (const service of ['ledger', 'loadgen']) {
      const reply = await call(paymentsSidecar.addresses.outbound!, service, '/');
      expect(reply.status, service).to.equal(503);
      expect(reply.headers['x-faultline-flags'], service).to.equal('UH');
      const error = reply.json<{ error: { code: string; message: string; service: string } }>().error;
      expect(error.code, service).to.equal('FL_NO_ENDPOINTS');
      expect(error.message).to.include(`service "${service}" has no endpoints`);
    }
  });
});
