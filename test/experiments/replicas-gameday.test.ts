// A game day against replicated control planes (two on one real etcd), and the drill of issue 22:
// the leader, which some sidecars are attached to, dies mid-method; the other leads. The run goes on through the other — its
// fault renewals, its recording (every sidecar's events, replayed ones once), its rollback verified
// from the sidecars' acks on the survivor — and no fault and no instance is lost or left behind.
import { expect } from 'chai';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { MeshClient } from '../../src/experiments/mesh-client.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const TOKEN = 'replicas-gameday-token';
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

async function get(url: string, path: string): Promise<Record<string, unknown>> {
  const response = await request(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(response.statusCode, `GET ${url}${path}`).to.equal(200);
  return (await response.body.json()) as Record<string, unknown>;
}

describe('a game day against replicated control planes', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let dir: string;
  const replicas: RunningControlPlane[] = [];
  const sidecars = new Map<string, ControlledSidecar>();
  const apps: Upstream[] = [];

  const startReplica = async (listen: string, store: string, withConfig: boolean): Promise<string> => {
    const replica = await startControlPlane({ listen, token: TOKEN, stateDir: join(dir, `cp${replicas.length}`), store, leaderTtlMs: 2_000, ...(withConfig && { configFile: join(dir, 'mesh.yaml') }) });
    replicas.push(replica);
    return replica.url;
  };

  before(async () => {
    etcd = await startEtcd(1);
    dir = await mkdtemp(join(tmpdir(), 'faultline-replicas-gameday-'));
    const store = `etcd://${etcd.hosts.join(',')}/gameday-${process.pid}`;
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'replicated' },
      services: [{ name: 'web' }, { name: 'api' }],
      routes: [{ name: 'api', match: { host: 'api' }, destinations: [{ service: 'api' }], retries: { attempts: 2, retryOn: ['5xx'], backoff: { base: '1ms', max: '5ms' } } }],
    }));
    // Replica 0 starts first, so it leads; web-1 and api-1 join while replica 1 is not up yet, so they are
    // attached to the leader — the replica the drill kills; api-2 joins either.
    const second = await freeAddress();
    const urls = [await startReplica(await freeAddress(), store, true), `http://${second}`];
    await waitFor(() => replicas[0]!.leadership.isLeader, 5_000, 'replica 0 to lead');
    const join_ = async (name: string, service: string, extra: Record<string, string>) => {
      const s = await startControlledSidecar({ url: urls, token: TOKEN, stateDir: join(dir, `s-${name}`), waitMs: 5_000, join: { service, name, admin: await freeAddress(), ...extra } });
      sidecars.set(name, s);
    };
    const app = async (name: string) => {
      const upstream = await startUpstream(name);
      apps.push(upstream);
      return upstream.address;
    };
    await join_('web-1', 'web', { outbound: await freeAddress() });
    await join_('api-1', 'api', { app: await app('api-1'), inbound: await freeAddress() });
    await startReplica(second, store, false);
    await join_('api-2', 'api', { app: await app('api-2'), inbound: await freeAddress() });
    const web = sidecars.get('web-1')!.sidecar;
    await waitFor(() => web.snapshot.services.get('api')?.endpoints.length === 2, 10_000, 'web-1 to have both api instances');
    await waitFor(async () => {
      const lists = await Promise.all(urls.map((u) => get(u, '/sidecars')));
      const versions = new Set(lists.map((l) => l.version));
      const ready = lists.flatMap((l) => (l.sidecars as { name: string; health: string }[]).filter((s) => s.health === 'ready').map((s) => s.name));
      return versions.size === 1 && ready.length === 3;
    }, 10_000, 'every sidecar ready on one version, on one replica or the other');
  });

  after(async () => {
    for (const s of sidecars.values()) await s.close().catch(() => undefined);
    for (const r of replicas) await r.close().catch(() => undefined);
    for (const app of apps) await app.close();
    await etcd?.stop();
  });

  it('an emergency stop through one replica checks every sidecar, those attached to the other too', async () => {
    const [leader, other] = replicas as [RunningControlPlane, RunningControlPlane];
    const put = await request(`${leader.url}/faults/drill`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'match: {destination: api}\nabort: {status: 503}\nttl: 30s\n' });
    expect(put.statusCode).to.equal(200);
    await put.body.dump();
    await waitFor(() => [...sidecars.values()].every((s) => s.sidecar.faults.get('drill')), 5_000, 'the fault on every sidecar');
    // Through the replica web-1 and api-1 are not attached to: it alone knows at most api-2.
    const report = await new MeshClient([other.url, leader.url], TOKEN).halt('tester', 'drill');
    expect(report.deleted).to.deep.equal(['drill']);
    expect(report.sidecars.map((s) => [s.name, s.problem])).to.deep.equal([['api-1', null], ['api-2', null], ['web-1', null]]);
    expect(report.verified).to.equal(true);
    for (const s of sidecars.values()) expect(s.sidecar.faults.get('drill')).to.equal(undefined);
  });

  it('POST /halt on one replica checks the sidecars attached to the other too (the console\'s stop)', async () => {
    const [leader, other] = replicas as [RunningControlPlane, RunningControlPlane];
    const put = await request(`${leader.url}/faults/drill-2`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'match: {destination: api}\nabort: {status: 503}\nttl: 30s\n' });
    expect(put.statusCode).to.equal(200);
    await put.body.dump();
    await waitFor(() => [...sidecars.values()].every((s) => s.sidecar.faults.get('drill-2')), 5_000, 'the fault on every sidecar');
    const response = await request(`${other.url}/halt`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'tester', reason: 'drill' }) });
    expect(response.statusCode).to.equal(200);
    const report = (await response.body.json()) as { verified: boolean; deleted: string[]; sidecars: { name: string; problem: string | null; replica?: string }[] };
    expect(report.deleted).to.deep.equal(['drill-2']);
    expect(report.sidecars.map((s) => [s.name, s.problem])).to.deep.equal([['api-1', null], ['api-2', null], ['web-1', null]]);
    // Those attached to the leader were checked by asking it.
    const attached = [...sidecars].filter(([, s]) => s.client.url === leader.url).map(([name]) => name);
    expect(attached.length).to.be.above(0);
    for (const name of attached) expect(report.sidecars.find((s) => s.name === name)?.replica).to.equal(leader.url);
    expect(report.verified).to.equal(true);
  });

  it('completes when the leader, which sidecars are attached to, dies mid-method: the other leads; recorded, rolled back, nothing lost', async () => {
    const web = sidecars.get('web-1')!;
    const file = join(dir, 'gameday.yaml');
    await writeFile(file, stringify({
      name: 'replicas-gameday',
      target: { control: replicas.map((r) => r.url), tokenFile: 'token' },
      load: { url: `http://${web.sidecar.addresses.outbound!}`, requests: [{ path: '/', headers: { host: 'api' } }], rate: 40 },
      phases: { warmup: '500ms', baseline: '1500ms', recovery: '1s' },
      steadyState: [{ availability: { service: 'api', min: 90 } }],
      method: [{ at: '0s', duration: '4s', fault: { id: 'api-aborts', match: { destination: 'api' }, at: 'attempt', percent: 20, abort: { status: 503 } } }],
      expect: [{ retriesMask: { service: 'api', min: 50 } }],
    }));
    const running = runExperiment({ file, out: join(dir, 'reports'), seed: 3, stream: quiet });

    // Mid-method, with the fault in force, the leader dies: the replica web-1 and api-1 are attached to.
    await waitFor(() => web.sidecar.faults.get('api-aborts'), 15_000, 'the fault to be in force on web-1');
    const [doomed, survivor] = replicas as [RunningControlPlane, RunningControlPlane];
    expect(await get(survivor.url, '/leader')).to.deep.equal({ leader: doomed.url, self: survivor.url, leading: false });
    expect(web.client.url).to.equal(doomed.url);
    const attached = [...sidecars].filter(([, s]) => s.client.url === doomed.url).map(([name]) => name);
    await doomed.close();
    const killedAt = Date.now();
    // It resigned as it closed: the survivor leads at once (a leader that dies without a word: leader.test.ts).
    await waitFor(async () => (await get(survivor.url, '/leader')).leading === true, 2_000, 'the survivor to lead');
    await waitFor(() => [...sidecars.values()].every((s) => s.client.connected && s.client.url === survivor.url), 10_000, 'every sidecar to fail over to the survivor');

    const result = await running;
    expect(result.outcome, result.journal.reason ?? '').to.be.oneOf(['passed', 'failed']);
    const method = result.journal.phases.find((p) => p.name === 'method')!;
    expect(method.outcome).to.equal('done');
    expect(Date.parse(method.endedAt!)).to.be.above(killedAt);
    // The fault was renewed through the survivor after the kill (its lease is 5 s; the step 4 s).
    expect(result.journal.faults[0]!.renewals).to.be.at.least(3);
    expect(result.journal.rollback).to.include({ verified: true });
    // Verified from the acks, not by waiting out the lease (5 s): nothing brought the fault back.
    const rollback = result.journal.phases.find((p) => p.name === 'rollback')!;
    expect(Date.parse(rollback.endedAt!) - Date.parse(rollback.startedAt)).to.be.below(4_000);

    // The recording: every sidecar's events after the kill (those attached to the dead replica came
    // through the survivor), and no event twice though the failed-over ones replayed their history.
    const events = (await readFile(join(result.dir, 'events.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const name of sidecars.keys()) {
      expect(events.some((e) => e.sidecar === name && (e.time as number) > killedAt), `events of ${name} after the kill (attached to the dead replica: ${attached.join(', ')})`).to.equal(true);
    }
    const keys = events.filter((e) => typeof e.sourceSeq === 'number').map((e) => `${String(e.sidecar)}#${String(e.sourceSeq)}`);
    expect(new Set(keys).size).to.equal(keys.length);
    const kept = (await readFile(join(result.dir, 'metrics.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { t: number; sidecar: string });
    expect(kept.some((m) => m.sidecar === 'web-1' && m.t > killedAt), 'metric samples of web-1 after the kill').to.equal(true);
    // The hypotheses were judged on web-1's request.done, which came through the merge.
    expect(result.journal.verdicts.map((v) => v.outcome)).not.to.include('inconclusive');

    // Nothing left behind: no fault on any sidecar or in the surviving replica; every instance listed.
    for (const [name, s] of sidecars) expect(s.sidecar.faults.all().filter((f) => f.origin !== 'config').map((f) => f.id), name).to.deep.equal([]);
    expect((await get(survivor.url, '/faults')).faults).to.deep.equal([]);
    const instances = (await get(survivor.url, '/instances')).instances as { name: string }[];
    expect(instances.map((i) => i.name).sort()).to.deep.equal(['api-1', 'api-2']);
  });
});
