// etcd stopped whole under a fleet: sidecars keep serving on their last state, registrations do not
// flap (no instance leaves any sidecar), and when etcd returns everything converges without a
// restart — renewals go on, and a change made after it reaches every sidecar.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { call } from '../helpers/client.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const TOKEN = 'etcd-outage-token';

describe('etcd stopped under a fleet', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let control: RunningControlPlane;
  let app: Upstream;
  const sidecars: ControlledSidecar[] = [];

  after(async () => {
    for (const s of sidecars) await s.close().catch(() => undefined);
    await control?.close().catch(() => undefined);
    await app?.close();
    await etcd?.stop();
  });

  it('keeps serving on the last state with no instance leaving, and converges when etcd returns', async () => {
    etcd = await startEtcd(1);
    const dir = await mkdtemp(join(tmpdir(), 'faultline-etcd-outage-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'outage' }, services: [{ name: 'web' }, { name: 'payments' }] }));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'cp'), store: `etcd://${etcd.hosts.join(',')}/outage-${process.pid}`, configFile: join(dir, 'mesh.yaml') });
    app = await startUpstream('payments');
    // A short registration lease, renewed every second: an outage of several leases must not drop it.
    sidecars.push(await startControlledSidecar({ url: control.url, token: TOKEN, stateDir: join(dir, 'payments'), waitMs: 5_000, join: { service: 'payments', name: 'payments-1', app: app.address, inbound: await freeAddress(), admin: await freeAddress(), ttlMs: 3_000 } }));
    const web = await startControlledSidecar({ url: control.url, token: TOKEN, stateDir: join(dir, 'web'), waitMs: 5_000, join: { service: 'web', name: 'web-1', outbound: await freeAddress(), admin: await freeAddress() } });
    sidecars.push(web);
    await waitFor(() => web.sidecar.snapshot.services.get('payments')?.endpoints.length === 1, 5_000, 'web to have payments');
    // Every change of the endpoints web sees, from here on: there must be none while etcd is down.
    const seen: number[] = [];
    const watching = setInterval(() => seen.push(web.sidecar.snapshot.services.get('payments')?.endpoints.length ?? 0), 50);

    for (const member of etcd.members) await member.kill();
    const downAt = Date.now();
    // Two lease lengths and more with no etcd: requests go on, the instance stays everywhere.
    let served = 0;
    while (Date.now() - downAt < 7_000) {
      expect((await call(web.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
      served++;
    }
    expect(served).to.be.above(10);
    expect(control.plane.instances().map((i) => i.name)).to.deep.equal(['payments-1']);

    for (const member of etcd.members) await member.start();
    // Back: a fault put now reaches the sidecar (the store answers, the watch resumed), and the instance stayed.
    await waitFor(async () => {
      const response = await request(`${control.url}/faults/pay-slow`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'match: {destination: payments}\ndelay: {fixed: 1ms}\nttl: 30s\n' });
      await response.body.dump();
      return response.statusCode === 200;
    }, 15_000, 'the control plane to write to etcd again');
    await waitFor(() => web.sidecar.faults.all().some((f) => f.id === 'pay-slow'), 10_000, 'the fault to reach the sidecar');
    // Renewals go on: three more lease lengths later the instance is still registered.
    const backAt = Date.now();
    await waitFor(() => Date.now() - backAt > 4_000 && control.plane.instances().length === 1, 10_000, 'the registration to hold');
    clearInterval(watching);
    expect(control.plane.instances().map((i) => i.name)).to.deep.equal(['payments-1']);
    expect(new Set(seen), 'payments never left web\'s endpoints').to.deep.equal(new Set([1]));
  });
});
