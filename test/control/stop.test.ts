// The emergency stop is complete: a sidecar under a control plane takes its runtime faults from there
// alone (its admin API refuses to change them, and each snapshot makes them exactly the listed ones),
// and DELETE /faults or `faultline stop` removes every runtime fault mesh-wide, checks each sidecar by
// what its ack says it holds (over its own connection) and reports what it removed where — and says so when it cannot verify one; a
// game day's lease renewal cannot bring a removed fault back.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { MeshClient } from '../../src/experiments/mesh-client.ts';
import { FaultSpec } from '../../src/faults/schema.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { runCli } from '../helpers/process.ts';

const TOKEN = 'stop-token-for-tests';

async function api(url: string, path: string, method = 'GET', body?: string): Promise<{ status: number; json<T = Record<string, unknown>>(): T }> {
  const response = await request(`${url}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, ...(body !== undefined && { body }) });
  const text = await response.body.text();
  return { status: response.statusCode, json: () => JSON.parse(text) };
}

interface Report {
  deleted: string[];
  verified: boolean;
  sidecars: { name: string; connected: boolean; acknowledged: boolean; removed: string[]; remaining: string[] | null; problem: string | null }[];
}

describe('control plane: the emergency stop is complete', function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let dir: string;
  let control: RunningControlPlane;
  const sidecars = new Map<string, ControlledSidecar>();

  const putFault = async (id: string, body: string) => {
    const reply = await api(control.url, `/faults/${id}`, 'PUT', body);
    expect(reply.status, JSON.stringify(reply.json())).to.equal(200);
    expect(await control.plane.waitForAcks(reply.json<{ version: string }>().version, 5_000)).to.equal(true);
  };

  before(async () => {
    upstream = await startUpstream('payments');
    dir = await mkdtemp(join(tmpdir(), 'faultline-stop-'));
    const apps = { checkout: await freeAddress(), frontend: await freeAddress() };
    const config = {
      mesh: { name: 'stopped' },
      services: [
        { name: 'checkout', endpoints: [{ address: apps.checkout }] },
        { name: 'frontend', endpoints: [{ address: apps.frontend }] },
        { name: 'payments', endpoints: [{ address: upstream.address }] },
      ],
      sidecars: [await sidecarEntry('checkout', apps.checkout), await sidecarEntry('frontend', apps.frontend)],
    };
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, stringify(config));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'control'), configFile: file });
    for (const name of ['checkout', 'frontend']) {
      sidecars.set(name, await startControlledSidecar({ url: control.url, token: TOKEN, name, stateDir: join(dir, 'sidecars', name), waitMs: 2_000 }));
    }
  });

  after(async () => {
    for (const s of sidecars.values()) await s.close();
    await control.close();
    await upstream.close();
  });

  it('a controlled sidecar refuses a fault put on its own admin API, and says where faults are put', async () => {
    const admin = sidecars.get('checkout')!.sidecar.addresses.admin;
    const put = await send(admin, { method: 'PUT', path: '/faults/sneaky', headers: { 'content-type': 'application/yaml' }, body: 'match: {destination: payments}\nabort: {status: 503}\nttl: 1m\n' });
    expect(put.status).to.equal(409);
    expect(put.json()).to.deep.equal({
      error: `this sidecar's runtime faults come from the control plane at ${control.url}: PUT /faults/sneaky there (faultline stop removes them all, mesh-wide)`,
      code: 'FL_FAULTS_CONTROLLED',
    });
    expect((await send(admin, { method: 'DELETE', path: '/faults' })).status).to.equal(409);
    expect((await send(admin, { path: '/faults' })).json()).to.deep.equal({ faults: [] });
    expect((await call(sidecars.get('checkout')!.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
  });

  it('a snapshot makes a sidecar\'s runtime faults exactly the control plane\'s', async () => {
    // A runtime fault the control plane never listed (put before the sidecar came under it, say).
    const checkout = sidecars.get('checkout')!.sidecar;
    checkout.faults.put(FaultSpec.parse({ id: 'stray', match: { destination: 'payments' }, abort: { status: 503 }, ttl: '1m' }));
    await putFault('listed', 'match: {destination: payments, path: /never}\nabort: {status: 503}\nttl: 1m\n');
    expect(checkout.faults.all().map((f) => f.id)).to.deep.equal(['listed']);
    expect((await call(checkout.addresses.outbound!, 'payments')).status).to.equal(200);
  });

  it('DELETE /faults removes every runtime fault mesh-wide, checks each sidecar, and reports what it removed where', async () => {
    await putFault('pay-slow', 'match: {destination: payments}\ndelay: {fixed: 30s}\npercent: 50\nttl: 1m\n');
    const reply = await api(control.url, '/faults', 'DELETE');
    expect(reply.status).to.equal(200);
    const report = reply.json<Report>();
    expect([report.deleted, report.verified]).to.deep.equal([['listed', 'pay-slow'], true]);
    expect(report.sidecars.map((s) => [s.name, s.acknowledged, s.removed, s.remaining, s.problem])).to.deep.equal([
      ['checkout', true, ['listed', 'pay-slow'], [], null],
      ['frontend', true, ['listed', 'pay-slow'], [], null],
    ]);
    for (const s of sidecars.values()) expect(s.sidecar.faults.all()).to.deep.equal([]);
    // A game day's lease renewal on its way when the stop came (If-Match: *) cannot bring one back.
    const client = new MeshClient(control.url, TOKEN);
    const renewal = await client.putFault({ id: 'pay-slow', match: { destination: 'payments' }, delay: { fixed: '30s' }, percent: 50 }, 5_000, true).then(() => 'renewed', (error: Error) => error.message);
    expect(renewal).to.match(/^PUT \/faults\/pay-slow answered 412: [\s\S]*no runtime fault \\"pay-slow\\" to renew: it was removed/);
    expect(control.plane.faults.all()).to.deep.equal([]);
  });

  it('faultline stop prints each sidecar, and exits 1 when one cannot be verified (disconnected, still holding a fault)', async () => {
    await putFault('pay-down', 'match: {destination: payments}\nabort: {status: 503}\nttl: 1m\n');
    // frontend loses the control plane but keeps serving, with the fault, until its lease ends.
    await sidecars.get('frontend')!.client.close();
    await waitFor(() => control.plane.sidecars().find((s) => s.name === 'frontend' && !s.connected), 5_000, 'frontend to be disconnected');
    const run = await runCli(['stop', '--control', control.url, '--by', 'tester', '--reason', 'drill'], 20_000, { ...process.env, FAULTLINE_TOKEN: TOKEN });
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stdout.split('\n')).to.deep.equal([
      'halted by tester: 1 runtime fault(s) removed (pay-down)',
      '  checkout  removed pay-down; none left',
      '  frontend  removed nothing; NOT verified: disconnected, and last said it holds pay-down: its runtime faults end with their leases, on its own clock',
      'NOT verified: see the sidecars above',
      '',
    ]);
    expect(sidecars.get('checkout')!.sidecar.faults.all()).to.deep.equal([]);
  });
});
