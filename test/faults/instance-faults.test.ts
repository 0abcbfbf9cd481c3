// Faults on chosen instances over real sockets: an attempt fault on the endpoints with a label acts
// after the caller's balancer picked one of them, and nowhere else; an inbound fault on one seeded
// instance of three acts at that instance's sidecar only. Events name the instance each hit.
import { expect } from 'chai';
import { select } from '../../src/faults/endpoints.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

describe('faults on chosen instances (real sockets)', function () {
  this.timeout(20_000);
  const closing: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c.close();
  });

  async function upstreams(n: number): Promise<Upstream[]> {
    const list = await Promise.all(Array.from({ length: n }, (_, i) => startUpstream(`pay-${i}`)));
    closing.push(...list);
    return list;
  }

  it('at attempt, by labels: only calls the balancer sent to a v2 endpoint are faulted, after the pick', async () => {
    const [a, b, c] = await upstreams(3);
    const config = {
      mesh: { name: 'chosen' },
      services: [
        { name: 'web', endpoints: [{ address: await freeAddress() }] },
        { name: 'pay', loadBalancer: 'round-robin', endpoints: [{ address: a!.address, labels: { version: 'v1' } }, { address: b!.address, labels: { version: 'v1' } }, { address: c!.address, labels: { version: 'v2' } }] },
      ],
      sidecars: [await sidecarEntry('web', await freeAddress())],
      faults: [{ id: 'v2-down', at: 'attempt', match: { destination: 'pay', endpoints: { labels: { version: 'v2' } } }, abort: { status: 503 } }],
    };
    const web = await startSidecar(config, 'web');
    closing.push(web);
    const applied: MeshEvents['fault.applied'][] = [];
    const done: MeshEvents['request.done'][] = [];
    web.events.on('fault.applied', (e) => applied.push(e));
    web.events.on('request.done', (e) => done.push(e));
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await call(web.addresses.outbound!, 'pay')).status);
    await waitFor(() => done.length === 30, 5_000, 'every request.done');
    // Round-robin over three: a third went to the v2 endpoint and were aborted before reaching it.
    expect(statuses.filter((s) => s === 503)).to.have.length(10);
    expect(c!.seen).to.have.length(0);
    expect(a!.seen.length + b!.seen.length).to.equal(20);
    expect(applied).to.have.length(10);
    expect(new Set(applied.map((e) => e.endpoint))).to.deep.equal(new Set([c!.address]));
    expect(applied.every((e) => e.point === 'attempt' && e.attempt === 1)).to.equal(true);
    for (const d of done) expect(d.faults.length > 0, `${d.endpoint} ${d.status}`).to.equal(d.endpoint === c!.address);
  });

  it('inbound, one seeded instance of three: that instance\'s sidecar faults its calls, the others none', async () => {
    const apps = await upstreams(3);
    const seed = 11;
    const endpoints = apps.map((app) => ({ address: app.address, labels: {} }));
    const [chosen] = [...select({ count: 1 }, seed, endpoints)];
    const config = {
      mesh: { name: 'chosen' },
      services: [
        { name: 'web', endpoints: [{ address: await freeAddress() }] },
        { name: 'pay', loadBalancer: 'round-robin', endpoints },
      ],
      sidecars: [
        await sidecarEntry('web', await freeAddress()),
        ...(await Promise.all(apps.map((app, i) => sidecarEntry('pay', app.address, `pay-${i}`)))),
      ],
      faults: [{ id: 'one-bad', at: 'inbound', seed, match: { destination: 'pay', endpoints: { count: 1 } }, abort: { status: 503 } }],
    };
    const pays: Sidecar[] = [];
    for (let i = 0; i < 3; i++) pays.push(await startSidecar(config, `pay-${i}`));
    closing.push(...pays);
    const web = await startSidecar(config, 'web');
    closing.push(web);
    const applied = new Map<string, MeshEvents['fault.applied'][]>();
    for (const pay of pays) {
      const mine: MeshEvents['fault.applied'][] = [];
      applied.set(pay.name, mine);
      pay.events.on('fault.applied', (e) => mine.push(e));
    }
    const done: MeshEvents['request.done'][] = [];
    web.events.on('request.done', (e) => done.push(e));
    for (let i = 0; i < 30; i++) await call(web.addresses.outbound!, 'pay');
    await waitFor(() => done.length === 30, 5_000, 'every request.done');
    const index = apps.findIndex((app) => app.address === chosen);
    for (const [i, pay] of pays.entries()) {
      const events = applied.get(pay.name)!;
      if (i === index) {
        expect(events).to.have.length(10);
        expect(events.every((e) => e.endpoint === chosen && e.point === 'inbound')).to.equal(true);
      } else {
        expect(events, pay.name).to.have.length(0);
      }
    }
    expect(apps[index]!.seen).to.have.length(0);
    for (const d of done) expect(d.status, String(d.endpoint)).to.equal(d.endpoint === chosen ? 503 : 200);
  });
});
