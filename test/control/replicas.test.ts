// Control planes on etcd, several of them: two replicas on one store (a real etcd) hold one desired
// state — the same version on both; a config, a fault or a registration written on one reaches
// sidecars attached to the other; a sidecar given both fails over when its replica dies, with its
// instance kept; both sign with one CA, whose key the store holds only sealed; a stored fault lives
// under an etcd lease.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { EtcdStore } from '../../src/control/etcd-store.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { call } from '../helpers/client.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const TOKEN = 'replicas-test-token';

async function api(url: string, path: string, method = 'GET', body?: string): Promise<{ status: number; text: string; readonly json: Record<string, unknown> }> {
  const response = await request(`${url}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, ...(body !== undefined && { body }) });
  const text = await response.body.text();
  return { status: response.statusCode, text, get json() { return text ? (JSON.parse(text) as Record<string, unknown>) : {}; } };
}

describe('control planes on etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let dir: string;
  let store: string;
  const replicas: RunningControlPlane[] = [];
  const sidecars: ControlledSidecar[] = [];
  let app: Upstream;
  let mesh: Record<string, unknown>;

  const replica = async (i: number, withConfig: boolean) => {
    const file = join(dir, 'mesh.yaml');
    const plane = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, `cp${i}`), store, ...(withConfig && { configFile: file }) });
    replicas[i] = plane;
    return plane;
  };

  before(async () => {
    etcd = await startEtcd(1);
    dir = await mkdtemp(join(tmpdir(), 'faultline-replicas-'));
    store = `etcd://${etcd.hosts.join(',')}/replicas-${process.pid}`;
    app = await startUpstream('payments');
    mesh = { mesh: { name: 'replicas' }, mtls: { mode: 'strict' }, services: [{ name: 'web' }, { name: 'payments' }] };
    await writeFile(join(dir, 'mesh.yaml'), stringify(mesh));
    await replica(0, true);
    await replica(1, false);
  });

  after(async () => {
    for (const s of sidecars) await s.close().catch(() => undefined);
    for (const r of replicas) await r?.close().catch(() => undefined);
    await app?.close();
    await etcd?.stop();
  });

  it('serves one state from the store: the same version on every replica, and one CA whose key is stored sealed', async () => {
    expect(replicas[1]!.plane.configText).to.equal(replicas[0]!.plane.configText);
    expect(replicas[1]!.plane.state.version).to.equal(replicas[0]!.plane.state.version);
    const raw = await EtcdStore.connect({ hosts: etcd.hosts, prefix: `replicas-${process.pid}` });
    try {
      const keys = await raw.list('ca/');
      expect(keys).to.deep.equal(['ca/cert.pem', 'ca/key.sealed']);
      expect(await raw.get('ca/key.sealed')).not.to.contain('PRIVATE KEY');
    } finally {
      await raw.close();
    }
  });

  it('carries a registration on one replica to a sidecar on the other, and a fault put on one to sidecars of both', async () => {
    // payments joins through replica 0; web (client-only) watches replica 1.
    const payments = await startControlledSidecar({ url: replicas[0]!.url, token: TOKEN, stateDir: join(dir, 's-payments'), waitMs: 5_000, join: { service: 'payments', name: 'payments-1', app: app.address, inbound: await freeAddress(), admin: await freeAddress() } });
    const web = await startControlledSidecar({ url: [replicas[1]!.url, replicas[0]!.url], token: TOKEN, stateDir: join(dir, 's-web'), waitMs: 5_000, join: { service: 'web', name: 'web-1', outbound: await freeAddress(), admin: await freeAddress() } });
    sidecars.push(payments, web);
    await waitFor(() => web.sidecar.snapshot.services.get('payments')?.endpoints.length === 1, 5_000, 'web to have the payments instance registered on the other replica');
    expect((await call(web.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
    // Both replicas list the instance; both make the same version.
    expect(((await api(replicas[1]!.url, '/instances')).json.instances as { name: string }[]).map((i) => i.name)).to.deep.equal(['payments-1']);
    await waitFor(() => replicas[0]!.plane.state.version === replicas[1]!.plane.state.version, 5_000, 'the replicas to agree');

    expect((await api(replicas[0]!.url, '/faults/pay-down', 'PUT', 'match: {destination: payments}\nabort: {status: 503}\nttl: 30s\n')).status).to.equal(200);
    await waitFor(() => web.sidecar.faults.all().some((f) => f.id === 'pay-down'), 5_000, 'the fault put on replica 0 to reach the sidecar on replica 1');
    expect((await call(web.sidecar.addresses.outbound!, 'payments')).status).to.equal(503);
    await waitFor(() => replicas[0]!.plane.state.version === replicas[1]!.plane.state.version, 5_000, 'the replicas to agree on the fault');
    // Stored under an etcd lease: it ends in etcd on its own, even with no control plane.
    const raw = await EtcdStore.connect({ hosts: etcd.hosts, prefix: `replicas-${process.pid}` });
    try {
      expect(await raw.list('faults/')).to.deep.equal(['faults/pay-down']);
    } finally {
      await raw.close();
    }
    // Removed on the other replica: gone everywhere.
    expect((await api(replicas[1]!.url, '/faults/pay-down', 'DELETE')).status).to.be.oneOf([200, 204]);
    await waitFor(() => !web.sidecar.faults.all().some((f) => f.id === 'pay-down'), 5_000, 'the removal to reach the sidecar');
    expect((await call(web.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
  });

  it('a sidecar given both replicas goes on when its replica dies: no failed request, a new config still reaches it', async () => {
    const web = sidecars[1]!;
    // It started at either replica (a fleet spreads over them): the one it is attached to dies.
    const attached = replicas.findIndex((r) => r?.url === web.client.url);
    expect(attached).to.be.oneOf([0, 1]);
    const survivor = replicas[1 - attached]!;
    await replicas[attached]!.close();
    // Requests keep working meanwhile (the data path never needed the control plane).
    for (let i = 0; i < 20; i++) expect((await call(web.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
    await waitFor(() => web.client.connected && web.client.url === survivor.url, 10_000, 'the watch to fail over to the other replica');
    const changed = stringify({ ...mesh, routes: [{ name: 'pay', match: { host: 'payments' }, destinations: [{ service: 'payments' }], timeout: '2s' }] });
    expect((await api(survivor.url, '/config', 'PUT', changed)).status).to.equal(200);
    await waitFor(() => web.sidecar.snapshot.routes.some((r) => r.name === 'pay' && r.timeoutMs === 2_000), 5_000, 'the new config to reach the failed-over sidecar');
    // The payments instance stayed all along (its renewals go to whichever replica answers).
    expect(web.sidecar.snapshot.services.get('payments')!.endpoints.map((e) => e.sidecar)).to.deep.equal(['payments-1']);
  });

  it('a replica restarted with the unchanged --config file keeps the config changed since; an edited file is applied', async () => {
    const live = replicas.find((r, i) => i < 2 && r?.url === sidecars[1]!.client.url)!;
    const before = await api(live.url, '/config');
    expect(before.text).to.match(/name: pay/);
    // The file every replica was started with has not changed: a replica started with it serves the store's config.
    const restarted = await replica(2, true);
    expect((await api(restarted.url, '/config')).text).to.equal(before.text);
    expect(restarted.plane.state.version).to.equal(live.plane.state.version);
    // An edited file is the operator's new word: applied, and it reaches the sidecars of every replica.
    await writeFile(join(dir, 'mesh.yaml'), stringify({ ...mesh, routes: [{ name: 'edited', match: { host: 'payments' }, destinations: [{ service: 'payments' }], timeout: '3s' }] }));
    const edited = await replica(3, true);
    expect((await api(edited.url, '/config')).text).to.match(/name: edited/);
    await waitFor(() => sidecars[1]!.sidecar.snapshot.routes.some((r) => r.name === 'edited'), 5_000, 'the edited file to reach a sidecar of another replica');
  });

  it('after the admin token is rotated, a replica given the old one as a previous token opens the CA and seals it again under the new one', async () => {
    const rotated = 'replicas-test-token-rotated';
    const start = (token: string, previousTokens?: string[]) =>
      startControlPlane({ listen: '127.0.0.1:0', token, stateDir: join(dir, `cp-rot-${Math.random().toString(36).slice(2)}`), store, ...(previousTokens && { previousTokens }) });
    const refused = await start(rotated).then(async (r) => { await r.close(); return undefined; }, (error: Error) => error);
    expect(refused?.message).to.match(/does not open with this admin token.*--previous-token-file/);
    const raw = await EtcdStore.connect({ hosts: etcd.hosts, prefix: `replicas-${process.pid}` });
    try {
      const sealedBefore = await raw.get('ca/key.sealed');
      const certBefore = await raw.get('ca/cert.pem');
      const next = await start(rotated, [TOKEN]);
      replicas.push(next);
      expect(await raw.get('ca/key.sealed')).not.to.equal(sealedBefore);
      expect(await raw.get('ca/cert.pem')).to.equal(certBefore);
      // Sealed under the new token now: the new one alone opens it, the old one no longer does.
      const alone = await start(rotated);
      replicas.push(alone);
      const old = await start(TOKEN).then(async (r) => { await r.close(); return undefined; }, (error: Error) => error);
      expect(old?.message).to.match(/does not open with this admin token/);
    } finally {
      await raw.close();
    }
  });
});
