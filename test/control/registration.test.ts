// Instances that register themselves: sidecars that join with flags alone (no entry in the mesh file)
// become endpoints of their services for every other sidecar — by their advertised address, with their
// labels driving subsets — leave at once on a clean stop, and when killed without a word, when their
// registration lease ends. Static endpoints work beside them.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { joinedSpec, startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { call } from '../helpers/client.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { startSidecarWith } from '../helpers/process.ts';

const TOKEN = 'registration-test-token';

async function instances(url: string): Promise<{ name: string; service: string; address: string; labels: Record<string, string>; lease: { id: string; ttlMs: number } }[]> {
  const response = await request(`${url}/instances`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await response.body.json()) as { instances: never[] }).instances;
}

describe('control plane: instances that register themselves', function () {
  this.timeout(40_000);
  let dir: string;
  let control: RunningControlPlane;
  const apps: Upstream[] = [];
  const joined: ControlledSidecar[] = [];
  let caller: ControlledSidecar;
  let staticApp: Upstream;

  const join_ = async (service: string, app: Upstream, labels: Record<string, string>, name: string) => {
    const sidecar = await startControlledSidecar({
      url: control.url,
      token: TOKEN,
      stateDir: join(dir, 'sidecars', name),
      waitMs: 3_000,
      join: { service, name, app: app.address, inbound: await freeAddress(), admin: await freeAddress(), labels },
    });
    joined.push(sidecar);
    return sidecar;
  };

  /** The endpoints of payments as the caller's sidecar has them now. */
  const endpointsSeen = () => caller.sidecar.snapshot.services.get('payments')?.endpoints.map((e) => `${e.address} ${JSON.stringify(e.labels)}`).sort() ?? [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-registration-'));
    staticApp = await startUpstream('payments-static');
    const mesh = {
      mesh: { name: 'fleet' },
      services: [{ name: 'payments', endpoints: [{ address: staticApp.address, labels: { version: 'v0' } }] }],
      routes: [{ name: 'payments', match: { host: 'payments' }, destinations: [{ service: 'payments', subset: { version: 'v2' }, weight: 1 }, { service: 'payments', subset: { version: 'v1' }, weight: 1 }] }],
    };
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, stringify(mesh));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'control'), configFile: file });
    // A client-only sidecar joined with flags: an outbound listener, no inbound, no endpoint of its own.
    caller = await startControlledSidecar({ url: control.url, token: TOKEN, stateDir: join(dir, 'sidecars', 'web'), waitMs: 3_000, join: { service: 'web', outbound: await freeAddress(), admin: await freeAddress() } });
  });

  after(async () => {
    for (const s of [...joined, caller]) await s?.close().catch(() => undefined);
    await control?.close();
    for (const app of [...apps, staticApp]) await app.close();
  });

  it('takes the flags: a wildcard inbound needs --advertise; the service and name make a default name', () => {
    expect(() => joinedSpec({ service: 'payments', app: '127.0.0.1:8080', inbound: '0.0.0.0:15006' })).to.throw(/--advertise/);
    expect(joinedSpec({ service: 'payments', app: '127.0.0.1:8080', inbound: '0.0.0.0:15006', advertise: '10.213.0.5:15006' }).self.name).to.equal('payments-10-213-0-5-15006');
    expect(() => joinedSpec({ service: 'payments', inbound: '127.0.0.1:15006' })).to.throw(/--app/);
    expect(() => joinedSpec({ service: 'payments', outbound: '127.0.0.1:15001', admin: '0.0.0.0:15000' })).to.throw(/--admin: the admin listener/);
  });

  it('makes each joined instance an endpoint of its service for every other sidecar, labels and all', async () => {
    expect(control.plane.instances()).to.deep.equal([]);
    expect(endpointsSeen()).to.deep.equal([`${staticApp.address} {"version":"v0"}`]);
    for (const [name, version] of [['payments-a', 'v1'], ['payments-b', 'v2']] as const) {
      const app = await startUpstream(name);
      apps.push(app);
      await join_('payments', app, { version }, name);
    }
    const listed = await instances(control.url);
    expect(listed.map((i) => [i.name, i.service, i.labels.version])).to.deep.equal([['payments-a', 'payments', 'v1'], ['payments-b', 'payments', 'v2']]);
    expect(listed[0]!.address).to.equal(joined[0]!.sidecar.addresses.inbound);
    expect(listed[0]!.lease.ttlMs).to.equal(10_000);
    await waitFor(() => endpointsSeen().length === 3, 5_000, 'the caller to have both registered instances');
    expect(endpointsSeen()).to.include(`${joined[1]!.sidecar.addresses.inbound} {"version":"v2"}`);
    // The route's subsets select them by label: v1 and v2 are the registered ones; the static v0 is in no subset.
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const reply = await call(caller.sidecar.addresses.outbound!, 'payments');
      expect(reply.status).to.equal(200);
      seen.add(reply.json<{ name: string }>().name);
    }
    expect([...seen].sort()).to.deep.equal(['payments-a', 'payments-b']);
  });

  it('takes an instance out of every sidecar at once on a clean stop, long before its lease would end', async () => {
    const leaving = joined.shift()!;
    const stoppedAt = Date.now();
    await leaving.close();
    await waitFor(() => endpointsSeen().length === 2, 5_000, 'the caller to drop the instance that left');
    expect(Date.now() - stoppedAt, 'gone by deregistration, not by its 10 s lease').to.be.below(5_000);
    expect((await instances(control.url)).map((i) => i.name)).to.deep.equal(['payments-b']);
    // It said it leaves: it is not listed among the sidecars either (an emergency stop will not wait for it).
    expect(control.plane.sidecars().map((s) => s.name)).not.to.include('payments-a');
    // v1 has no instance left: its half of the route is 503 UH; v2's is payments-b.
    const replies = await Promise.all(Array.from({ length: 20 }, () => call(caller.sidecar.addresses.outbound!, 'payments')));
    expect(new Set(replies.map((r) => (r.status === 200 ? r.json<{ name: string }>().name : `${r.status} ${String(r.headers['x-faultline-flags'])}`)))).to.deep.equal(new Set(['payments-b', '503 UH']));
  });

  it('drops an instance killed without a word when its lease ends (a real process, kill -9), and refuses a name of another service', async () => {
    const app = await startUpstream('payments-c');
    apps.push(app);
    const killed = await startSidecarWith([
      '--control', control.url, '--service', 'payments', '--name', 'payments-c', '--app', app.address,
      '--inbound', await freeAddress(), '--admin', await freeAddress(), '--labels', 'version=v1,zone=b', '--lease', '2s',
      '--state-dir', join(dir, 'sidecars', 'payments-c'),
    ].concat([]), { FAULTLINE_TOKEN: TOKEN });
    await waitFor(() => endpointsSeen().some((e) => e.includes('"zone":"b"')), 5_000, 'the instance to join');
    const refused = await request(`${control.url}/v1/instances/payments-c`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'web', address: '127.0.0.1:1' }),
    });
    expect(refused.statusCode).to.equal(409);
    expect(((await refused.body.json()) as { error: string }).error).to.contain('registered for service payments');
    killed.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => !endpointsSeen().some((e) => e.includes('"zone":"b"')), 8_000, 'the lease to end');
    // Not before its 2 s lease could end (the last renewal was at most a third of it before the kill).
    expect(Date.now() - killedAt).to.be.above(2_000 / 3 - 100);
    expect((await instances(control.url)).map((i) => i.name)).to.deep.equal(['payments-b']);
  });
});
