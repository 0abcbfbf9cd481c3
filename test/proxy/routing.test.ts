// Routing over real sockets: header-matched routes before catch-alls, weighted canary splits within
// statistical bounds, subsets by labels.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, load } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

describe('routing', () => {
  let v1: Upstream;
  let v2: Upstream;
  let sidecar: Sidecar;

  before(async () => {
    v1 = await startUpstream('v1');
    v2 = await startUpstream('v2');
    const config = {
      mesh: { name: 'routing' },
      services: [
        { name: 'checkout', endpoints: [{ address: await freeAddress() }] },
        { name: 'payments', endpoints: [{ address: v1.address, labels: { version: 'v1' } }, { address: v2.address, labels: { version: 'v2' } }] },
      ],
      routes: [
        { name: 'beta-users', match: { host: 'payments', headers: { 'x-user': { regex: 'beta-.*' } } }, destinations: [{ service: 'payments', subset: { version: 'v2' } }] },
        { name: 'v2-api', match: { host: 'payments', pathPrefix: '/v2/', method: ['GET', 'POST'] }, destinations: [{ service: 'payments', subset: { version: 'v2' } }] },
        {
          name: 'canary',
          match: { host: 'payments' },
          destinations: [
            { service: 'payments', subset: { version: 'v2' }, weight: 10 },
            { service: 'payments', subset: { version: 'v1' }, weight: 90 },
          ],
        },
      ],
      sidecars: [await sidecarEntry('checkout', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'checkout');
  });

  after(async () => {
    await sidecar.close();
    await v1.close();
    await v2.close();
  });

  const version = async (path = '/', headers = {}) => (await call(sidecar.addresses.outbound!, 'payments', path, headers)).json<{ name: string }>().name;

  it('takes the first matching route: headers, then path and method, then the catch-all', async () => {
    for (let i = 0; i < 10; i++) expect(await version('/', { 'x-user': 'beta-ann' })).to.equal('v2');
    for (let i = 0; i < 10; i++) expect(await version('/v2/charge')).to.equal('v2');
  });

  it('splits 10/90 by weight, within 4.5 standard deviations over 2,000 requests', async () => {
    const n = 2_000;
    const names = await load(n, 16, () => version('/charge'));
    const share = names.filter((name) => name === 'v2').length / n;
    const sd = Math.sqrt((0.1 * 0.9) / n); // binomial
    expect(share).to.be.within(0.1 - 4.5 * sd, 0.1 + 4.5 * sd);
    expect(names.filter((name) => name === 'v1').length).to.equal(n - names.filter((name) => name === 'v2').length);
  });
});
