// Client-only workloads: a load generator, a batch job or an edge gateway calls services but serves
// none. Its service needs no endpoints and its sidecar no inbound listener or app; a call to a service
// with no endpoints (none at all, or none known yet) is 503 UH with its own code.
import { expect } from 'chai';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

function problems(text: string): ConfigProblem[] {
  try {
    parseConfig(text, 'mesh.yaml');
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  return [];
}

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
    const reply = await call(loadgen.addresses.outbound, 'payments', '/charge');
    expect(reply.status).to.equal(200);
    expect(reply.json()).to.include({ name: 'payments', url: '/charge' });
  });

  it('answers a call to a service with no endpoints with 503 UH, code FL_NO_ENDPOINTS', async () => {
    for (const service of ['ledger', 'loadgen']) {
      const reply = await call(paymentsSidecar.addresses.outbound, service, '/');
      expect(reply.status, service).to.equal(503);
      expect(reply.headers['x-faultline-flags'], service).to.equal('UH');
      const error = reply.json<{ error: { code: string; message: string; service: string } }>().error;
      expect(error.code, service).to.equal('FL_NO_ENDPOINTS');
      expect(error.message).to.include(`service "${service}" has no endpoints`);
    }
  });

  it('refuses a sidecar with an inbound listener but no app, or a command with no app to start, naming the field', () => {
    const base = 'mesh: {name: m}\nservices:\n  - name: job\nsidecars:\n  - service: job\n    outbound: 127.0.0.1:15001\n    admin: 127.0.0.1:15000\n';
    expect(problems(base)).to.deep.equal([]);
    const halfServing = problems(`${base}    inbound: 127.0.0.1:15006\n`);
    expect(halfServing.map((p) => [p.line, p.field])).to.deep.equal([[5, 'sidecars[0].app']]);
    expect(halfServing[0]!.message).to.match(/both inbound and app; a client-only one has neither/);
    const command = problems(`${base}    command: [node, job.js]\n`);
    expect(command.map((p) => [p.line, p.field])).to.deep.equal([[8, 'sidecars[0].command']]);
    expect(command[0]!.message).to.match(/give it app/);
  });

  it('does not require a route\'s subset to select an endpoint of a service that has none yet', () => {
    const text = 'mesh: {name: m}\nservices:\n  - name: api\nroutes:\n  - {name: canary, destinations: [{service: api, subset: {version: v2}}]}\n';
    expect(problems(text)).to.deep.equal([]);
  });
});
