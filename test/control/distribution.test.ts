// The control plane over real sockets: a token on every route; two sidecars that start from it and
// acknowledge each new version; a bad config refused with the old one kept everywhere; a config one
// sidecar cannot run refused by that sidecar alone; runtime faults distributed with their leases;
// the control plane killed and restarted under traffic with no failed request; a sidecar restarted
// without it from its kept snapshot; and one merged event stream.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { call, load } from '../helpers/client.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const TOKEN = 's3cret-token-for-tests';

async function api(url: string, path: string, options: { method?: string; body?: string; token?: string | null } = {}): Promise<{ status: number; text: string; json<T = Record<string, unknown>>(): T }> {
  const token = options.token === undefined ? TOKEN : options.token;
  const response = await request(`${url}${path}`, {
    method: (options.method ?? 'GET') as 'GET',
    headers: { ...(token !== null && { authorization: `Bearer ${token}` }), 'content-type': 'application/yaml' },
    ...(options.body !== undefined && { body: options.body }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, json: () => JSON.parse(text) };
}

describe('control plane: distribution', function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let dir: string;
  let listen: string;
  let control: RunningControlPlane;
  let config: Record<string, unknown>;
  const sidecars: ControlledSidecar[] = [];

  const start = (name: string) =>
    startControlledSidecar({ url: control.url, token: TOKEN, name, stateDir: join(dir, 'sidecars', name), waitMs: 2_000 });

  before(async () => {
    upstream = await startUpstream('payments');
    dir = await mkdtemp(join(tmpdir(), 'faultline-control-'));
    listen = await freeAddress();
    config = {
      mesh: { name: 'controlled' },
      services: [
        { name: 'checkout', endpoints: [{ address: await freeAddress() }] },
        { name: 'frontend', endpoints: [{ address: await freeAddress() }] },
        { name: 'payments', endpoints: [{ address: upstream.address }] },
      ],
      sidecars: [],
    };
    config.sidecars = [
      await sidecarEntry('checkout', (config.services as { endpoints: { address: string }[] }[])[0]!.endpoints[0]!.address),
      await sidecarEntry('frontend', (config.services as { endpoints: { address: string }[] }[])[1]!.endpoints[0]!.address),
    ];
    const file = join(dir, 'mesh.yaml');
    await (await import('node:fs/promises')).writeFile(file, stringify(config));
    control = await startControlPlane({ listen, token: TOKEN, stateDir: join(dir, 'control'), configFile: file });
    sidecars.push(await start('checkout'), await start('frontend'));
  });

  after(async () => {
    for (const s of sidecars) await s.close();
    await control.close();
    await upstream.close();
  });

  it('wants the token on every route, and a wrong one is no better', async () => {
    const routes: [string, string][] = [['GET', '/config'], ['PUT', '/config'], ['GET', '/faults'], ['PUT', '/faults/x'], ['DELETE', '/faults/x'], ['DELETE', '/faults'], ['GET', '/sidecars'], ['GET', '/events'], ['GET', '/v1/watch?sidecar=checkout'], ['POST', '/v1/ack'], ['POST', '/v1/identity']];
    for (const [method, path] of routes) {
      expect((await api(control.url, path, { method, token: null })).status, `${method} ${path}`).to.equal(401);
      expect((await api(control.url, path, { method, token: 'wrong' })).status, `${method} ${path} (wrong token)`).to.equal(401);
    }
  });

  it('starts sidecars from its snapshot; each acknowledges the version', async () => {
    const version = control.plane.state.version;
    const listed = await waitFor(async () => {
      const sidecars = (await api(control.url, '/sidecars')).json<{ sidecars: { name: string; connected: boolean; version: string; health: string }[] }>().sidecars;
      return sidecars.length === 2 && sidecars.every((s) => s.connected && s.version === version) && sidecars;
    }, 5_000, 'both sidecars to acknowledge');
    expect(listed.map((s) => [s.name, s.health])).to.deep.equal([['checkout', 'ready'], ['frontend', 'ready']]);
    expect((await call(sidecars[0]!.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
  });

  it('pushes a new config to every sidecar; all acknowledge', async () => {
    const next = { ...config, routes: [{ name: 'pay', match: { host: 'pay' }, destinations: [{ service: 'payments' }] }] };
    const reply = await api(control.url, '/config', { method: 'PUT', body: stringify(next) });
    expect(reply.status).to.equal(200);
    const version = reply.json<{ version: string }>().version;
    // Pushed over the watch streams (milliseconds when idle); 5 s leaves a busy machine room.
    expect(await control.plane.waitForAcks(version, 5_000)).to.equal(true);
    expect((await call(sidecars[1]!.sidecar.addresses.outbound!, 'pay')).status).to.equal(200);
    config = next;
  });

  it('refuses a bad config whole, with line and field, and every sidecar keeps the old one', async () => {
    const before = sidecars.map((s) => s.sidecar.snapshot.version);
    const reply = await api(control.url, '/config', { method: 'PUT', body: stringify(config).replace('name: pay\n', 'name: Pay!\n') });
    expect(reply.status).to.equal(400);
    expect(reply.json<{ problems: { file: string; field: string }[] }>().problems[0]).to.include({ file: 'PUT /config', field: 'routes[0].name' });
    expect(sidecars.map((s) => s.sidecar.snapshot.version)).to.deep.equal(before);
    expect((await api(control.url, '/config')).text).to.equal(stringify(config));
  });

  it('a config one sidecar cannot run is refused by that sidecar, which keeps serving, and says so', async () => {
    const withoutFrontend = { ...config, sidecars: (config.sidecars as { service: string }[]).filter((s) => s.service !== 'frontend') };
    const reply = await api(control.url, '/config', { method: 'PUT', body: stringify(withoutFrontend) });
    const version = reply.json<{ version: string }>().version;
    // Both answers are awaited: checkout's ack can come after frontend's refusal.
    const status = await waitFor(async () => {
      const listed = (await api(control.url, '/sidecars')).json<{ sidecars: { name: string; version: string; error: string | null }[] }>().sidecars;
      const frontend = listed.find((s) => s.name === 'frontend')!;
      return frontend.error && listed.find((s) => s.name === 'checkout')!.version === version ? listed : undefined;
    }, 5_000, 'frontend to refuse and checkout to acknowledge');
    expect(status.find((s) => s.name === 'checkout')!.version).to.equal(version);
    expect(status.find((s) => s.name === 'frontend')!.error).to.match(/no sidecar "frontend"/);
    expect((await call(sidecars[1]!.sidecar.addresses.outbound!, 'pay')).status).to.equal(200);
    await api(control.url, '/config', { method: 'PUT', body: stringify(config) });
    await waitFor(async () => (await api(control.url, '/sidecars')).json<{ sidecars: { error: string | null }[] }>().sidecars.every((s) => !s.error), 5_000, 'all well again');
  });

  it('distributes runtime faults with their leases, and their removal', async () => {
    const put = await api(control.url, '/faults/pay-down', { method: 'PUT', body: 'match: {destination: payments}\nabort: {status: 503}\nttl: 2m\n' });
    expect(put.status).to.equal(200);
    expect(await control.plane.waitForAcks(put.json<{ version: string }>().version, 5_000)).to.equal(true);
    expect((await call(sidecars[0]!.sidecar.addresses.outbound!, 'payments')).status).to.equal(503);
    const expiresAt = sidecars[0]!.sidecar.faults.get('pay-down')!.expiresAt!;
    expect(expiresAt - Date.now()).to.be.within(100_000, 120_000);
    const removed = await api(control.url, '/faults/pay-down', { method: 'DELETE' });
    expect(removed.status).to.equal(204);
    await waitFor(() => sidecars.every((s) => s.sidecar.faults.get('pay-down') === undefined), 5_000, 'the fault to go everywhere');
    expect((await call(sidecars[0]!.sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
  });

  it('merges the sidecars\' events into one stream, their request.done only while someone reads it, from the moment its head arrives', async () => {
    const merged = (path: RegExp) => control.plane.events.since(0).events.filter((e) => e.type === 'request.done' && path.test((e as { path: string }).path));
    // Nobody reads the merged stream: the sidecars' decisions are collected, their request.done are not.
    expect(control.plane.collectsRequests).to.equal(false);
    await call(sidecars[0]!.sidecar.addresses.outbound!, 'payments', '/unread');
    const put = await api(control.url, '/faults/unread-marker', { method: 'PUT', body: 'match: {destination: payments, path: /never}\nabort: {status: 503}\nttl: 1m\n' });
    expect(put.status).to.equal(200);
    await waitFor(() => {
      const installed = control.plane.events.since(0).events.filter((e) => e.type === 'fault.installed' && (e as { faultId: string }).faultId === 'unread-marker');
      return installed.filter((e) => e.sidecar !== 'control').length === 2 ? true : undefined;
    }, 5_000, 'both sidecars\' fault.installed in the merged stream');
    expect(merged(/unread/)).to.deep.equal([]);
    expect((await api(control.url, '/faults/unread-marker', { method: 'DELETE' })).status).to.equal(204);

    // A reader (a game day's recorder) attaches: request.done is collected while it reads.
    const reading = new AbortController();
    const stream = await request(`${control.url}/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: reading.signal, bodyTimeout: 0 });
    expect(stream.statusCode).to.equal(200);
    stream.body.on('error', () => undefined);
    stream.body.resume();
    expect(control.plane.collectsRequests).to.equal(true);
    // The head came once both sidecars had a read taking request.done open: each keeps them from then on.
    const before = sidecars.map((s) => s.sidecar.events.lastSeq);
    await call(sidecars[0]!.sidecar.addresses.outbound!, 'payments', '/merged-a');
    await call(sidecars[1]!.sidecar.addresses.outbound!, 'payments', '/merged-b');
    for (const [i, s] of sidecars.entries()) {
      const kept = await waitFor(() => s.sidecar.events.since(before[i]!).events.find((e) => e.type === 'request.done'), 5_000, 'request.done');
      expect((kept as { path: string }).path).to.match(/merged/);
    }
    const seen = await waitFor(() => {
      const events = merged(/merged/);
      return events.length === 2 ? events : undefined;
    }, 5_000, 'both sidecars\' request.done in the merged stream');
    expect(seen.map((e) => e.sidecar).sort()).to.deep.equal(['checkout', 'frontend']);
    expect(seen.every((e) => typeof e.sourceSeq === 'number')).to.equal(true);
    reading.abort();
    await waitFor(() => (control.plane.collectsRequests ? undefined : true), 5_000, 'the reader to be gone');
  });

  it('survives the control plane going away under traffic: no failed request, reconnect on return, state kept', async () => {
    const stateBefore = control.plane.state.version;
    let stop = false;
    // Batches of traffic counted by the phase they ran wholly in: the test goes on until there has
    // been one while the control plane was down and one after its return, however fast that was.
    type Phase = 'up' | 'down' | 'back';
    let phase = 'up' as Phase;
    const batches: Record<Phase, number> = { up: 0, down: 0, back: 0 };
    const traffic = (async () => {
      const statuses: number[] = [];
      while (!stop) {
        const during: Phase = phase;
        statuses.push(...(await load(10, 5, () => call(sidecars[0]!.sidecar.addresses.outbound!, 'payments'))).map((r) => r.status));
        if (phase === during) batches[during]++;
      }
      return statuses;
    })();
    await control.close();
    await waitFor(() => sidecars.every((s) => !s.client.connected), 5_000, 'sidecars to notice');
    phase = 'down';
    await waitFor(() => batches.down > 0, 10_000, 'traffic while the control plane is down');
    control = await startControlPlane({ listen, token: TOKEN, stateDir: join(dir, 'control') });
    expect(control.plane.state.version).to.equal(stateBefore);
    await waitFor(() => sidecars.every((s) => s.client.connected), 10_000, 'sidecars to reconnect');
    expect(await control.plane.waitForAcks(stateBefore, 5_000)).to.equal(true);
    phase = 'back';
    await waitFor(() => batches.back > 0, 10_000, 'traffic after the return');
    stop = true;
    const statuses = await traffic;
    expect(statuses.every((s) => s === 200)).to.equal(true);
  });

  it('a sidecar restarted while the control plane is down starts from its kept snapshot', async () => {
    const version = sidecars[0]!.sidecar.snapshot.version;
    await control.close();
    await sidecars[0]!.close();
    sidecars[0] = await startControlledSidecar({ url: control.url, token: TOKEN, name: 'checkout', stateDir: join(dir, 'sidecars', 'checkout'), waitMs: 300 });
    expect(sidecars[0].sidecar.snapshot.version).to.equal(version);
    expect((await call(sidecars[0].sidecar.addresses.outbound!, 'payments')).status).to.equal(200);
    control = await startControlPlane({ listen, token: TOKEN, stateDir: join(dir, 'control') });
    await waitFor(() => sidecars[0]!.client.connected, 10_000, 'reconnect');
  });
});

describe('control plane: the token stays secret', function () {
  this.timeout(20_000);

  it('never writes the token to its log, whatever happens (debug level, bad requests, a sidecar)', async () => {
    const { pino } = await import('pino');
    const { Writable } = await import('node:stream');
    let logged = '';
    const sink = new Writable({ write(chunk, _encoding, done) { logged += String(chunk); done(); } });
    const log = pino({ level: 'trace' }, sink);
    const dir = await mkdtemp(join(tmpdir(), 'faultline-token-'));
    const app = await freeAddress();
    const file = join(dir, 'mesh.yaml');
    await (await import('node:fs/promises')).writeFile(file, stringify({ mesh: { name: 'secret' }, services: [{ name: 'a', endpoints: [{ address: app }] }], sidecars: [await sidecarEntry('a', app)] }));
    const control = await startControlPlane({ listen: '127.0.0.1:0', token: TOKEN, stateDir: join(dir, 'control'), configFile: file, log });
    const sidecar = await startControlledSidecar({ url: control.url, token: TOKEN, name: 'a', stateDir: join(dir, 'a'), log });
    await api(control.url, '/config', { method: 'PUT', body: 'mesh: {name: Bad}\n' });
    await api(control.url, '/faults/x', { method: 'PUT', body: 'hang: {}\n' });
    await api(control.url, '/sidecars', { token: `${TOKEN}-wrong` });
    await sidecar.close();
    await control.close();
    expect(logged.length).to.be.above(100);
    expect(logged).to.not.include(TOKEN);
  });
});
