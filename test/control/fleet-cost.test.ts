// What a fleet costs the control plane per change: a sidecar acknowledges on its uplink (no request
// per ack) where the control plane says it takes them there, and posts each one where it does not; a
// burst of snapshots is applied once, the latest, and that ack counts for the earlier ones (the
// emergency stop's check, waitForAcks); a watch stream whose reader is behind gets the current
// snapshot when it drains, not every one made meanwhile; a registration goes to a sidecar that asks
// for deltas as that instance alone, which it rebuilds the state from; GET /sidecars?health= lists only those.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { createControlApp } from '../../src/control/api.ts';
import { ControlAccess } from '../../src/control/auth.ts';
import { ControlClient } from '../../src/control/client.ts';
import { applyDelta, type DesiredState, type InstanceDelta } from '../../src/control/desired-state.ts';
import { ControlPlane } from '../../src/control/plane.ts';
import { SidecarRoster } from '../../src/control/sidecar-roster.ts';
import { FileStore } from '../../src/control/store.ts';
import { FaultSpec } from '../../src/faults/schema.ts';
import { silentLogger } from '../../src/telemetry/log.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';

const TOKEN = 'acks-token-for-tests';

/** A control plane (its real app on a real listener) whose requests are counted by method and path; `older` drops the header that says it takes acks on the uplink, as one from before did. */
interface CountedPlane {
  plane: ControlPlane;
  url: string;
  count(route: string): number;
  close(): Promise<void>;
}

async function startCounted(configText: string, dir: string, older = false): Promise<CountedPlane> {
  const store = new FileStore(dir);
  const plane = await ControlPlane.open(store, silentLogger, configText);
  const access = await ControlAccess.open(TOKEN, store);
  const app = createControlApp(plane, access, { flow: plane });
  const counts = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const route = `${req.method} ${req.url!.split('?')[0]}`;
    counts.set(route, (counts.get(route) ?? 0) + 1);
    if (older && route === 'GET /v1/watch') {
      const writeHead = res.writeHead.bind(res) as (status: number, headers: Record<string, string>) => ServerResponse;
      res.writeHead = ((status: number, headers: Record<string, string>) => {
        const { 'x-faultline-acks': _taken, ...rest } = headers;
        return writeHead(status, rest);
      }) as typeof res.writeHead;
    }
    app(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    plane,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: (route) => counts.get(route) ?? 0,
    async close() {
      access.close();
      plane.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function putFault(url: string, id: string): Promise<string> {
  const response = await request(`${url}/faults/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'match: {destination: payments, path: /never}\nabort: {status: 503}\nttl: 1m\n' });
  const body = (await response.body.json()) as { version: string };
  expect(response.statusCode).to.equal(200);
  return body.version;
}

/** A raw watch stream (as a sidecar opens it): every message's event and data, in order. */
async function watchRaw(url: string, query: string): Promise<{ messages: { event: string; data: string }[]; close(): void; response: IncomingMessage }> {
  const messages: { event: string; data: string }[] = [];
  const target = new URL(`${url}/v1/watch${query}`);
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, headers: { authorization: `Bearer ${TOKEN}` } }, resolve).on('error', reject).end();
  });
  response.setEncoding('utf8');
  let buffer = '';
  response.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.+)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (event && data) messages.push({ event, data });
    }
  });
  return { messages, response, close: () => response.destroy() };
}

describe('control plane: what a fleet costs per change', function () {
  this.timeout(30_000);
  let dir: string;
  let configText: string;
  const planes: CountedPlane[] = [];
  const sidecars: ControlledSidecar[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-acks-'));
    configText = stringify({
      mesh: { name: 'acks' },
      services: [{ name: 'checkout', endpoints: [{ address: await freeAddress() }] }, { name: 'payments', endpoints: [{ address: await freeAddress() }] }],
      sidecars: [await sidecarEntry('checkout', await freeAddress())],
    });
  });

  afterEach(async () => {
    for (const sidecar of sidecars.splice(0)) await sidecar.close();
    for (const plane of planes.splice(0)) await plane.close();
  });

  it('a sidecar acknowledges on its uplink, with no request per ack, and says there which faults it holds', async () => {
    const control = await startCounted(configText, join(dir, 'uplink-plane'));
    planes.push(control);
    sidecars.push(await startControlledSidecar({ url: control.url, token: TOKEN, name: 'checkout', stateDir: join(dir, 'uplink-sidecar'), waitMs: 5_000 }));
    await waitFor(() => control.plane.sidecars().find((s) => s.name === 'checkout')?.uplink.open, 5_000, 'the uplink');
    const posted = control.count('POST /v1/ack');
    for (const id of ['one', 'two', 'three']) {
      const version = await putFault(control.url, id);
      expect(await control.plane.waitForAcks(version, 5_000)).to.equal(true);
    }
    const status = control.plane.sidecars().find((s) => s.name === 'checkout')!;
    expect(status.version).to.equal(control.plane.state.version);
    expect(status.faults).to.have.members(['one', 'two', 'three']);
    expect(control.count('POST /v1/ack'), 'acks posted once the uplink was open').to.equal(posted);
  });

  it('a sidecar of a control plane that does not say it takes acks on the uplink posts each one', async () => {
    const control = await startCounted(configText, join(dir, 'older-plane'), true);
    planes.push(control);
    sidecars.push(await startControlledSidecar({ url: control.url, token: TOKEN, name: 'checkout', stateDir: join(dir, 'older-sidecar'), waitMs: 5_000 }));
    await waitFor(() => control.plane.sidecars().find((s) => s.name === 'checkout')?.uplink.open, 5_000, 'the uplink');
    const posted = control.count('POST /v1/ack');
    const version = await putFault(control.url, 'old-style');
    expect(await control.plane.waitForAcks(version, 5_000)).to.equal(true);
    expect(control.count('POST /v1/ack')).to.be.greaterThan(posted);
    expect(control.plane.sidecars().find((s) => s.name === 'checkout')!.faults).to.deep.equal(['old-style']);
  });

  it('snapshots that arrive together are applied once, the latest; its ack counts for the earlier ones', async () => {
    const control = await startCounted(configText, join(dir, 'burst-plane'));
    planes.push(control);
    const client = new ControlClient({ url: control.url, token: TOKEN, sidecar: 'checkout', stateDir: join(dir, 'burst-client') });
    try {
      await client.start(5_000);
      const applied: string[] = [];
      client.onState(({ state }) => void applied.push(state.version));
      // Twenty states made in one go (the sidecar reads them only after: it is in this process).
      const versions: string[] = [];
      for (let i = 0; i < 20; i++) {
        control.plane.faults.put(FaultSpec.parse({ id: `burst-${i}`, match: { destination: 'payments' }, abort: { status: 503 }, ttl: '1m' }));
        versions.push(control.plane.state.version);
      }
      expect(await control.plane.waitForAcks(versions[0]!, 5_000)).to.equal(true);
      await waitFor(() => client.version === versions.at(-1), 5_000, 'the last state applied');
      expect(applied.at(-1)).to.equal(versions.at(-1));
      expect(applied.length, `applied ${applied.length} of 20`).to.be.lessThan(20);
      expect(control.plane.hasApplied('checkout', versions[0]!)).to.equal(true);
    } finally {
      await client.close();
    }
  });

  it('an ack counts for the states published before it, not for one published again after it, nor an error', () => {
    const roster = new SidecarRoster();
    roster.published('a');
    roster.published('b');
    roster.acknowledge('s', { version: 'b', error: null, removed: [] });
    expect(roster.hasApplied('s', 'a')).to.equal(true);
    expect(roster.hasApplied('s', 'b')).to.equal(true);
    roster.published('a');
    expect(roster.hasApplied('s', 'a'), 'a made again after its ack of b').to.equal(false);
    roster.published('c');
    roster.acknowledge('s', { version: 'c', error: 'refused', removed: [] });
    expect(roster.hasApplied('s', 'c')).to.equal(false);
    expect(roster.hasApplied('s', 'never-published')).to.equal(false);
  });

  it('a watch stream whose reader is behind gets the current snapshot when it drains, not each one made meanwhile', async () => {
    // Snapshots of ~400 KB (a long comment in the config): 45 of them are more than loopback buffers hold.
    const control = await startCounted(`${configText}\n# ${'x'.repeat(400_000)}\n`, join(dir, 'slow-plane'));
    planes.push(control);
    const received: string[] = [];
    let buffer = '';
    const watch = await new Promise<IncomingMessage>((resolve, reject) => {
      const url = new URL(`${control.url}/v1/watch?sidecar=checkout`);
      httpRequest({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, headers: { authorization: `Bearer ${TOKEN}` } }, resolve).on('error', reject).end();
    });
    watch.setEncoding('utf8');
    watch.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const version = /^event: snapshot\ndata: \{"version":"([^"]+)"/.exec(message)?.[1];
        if (version) received.push(version);
      }
    });
    await waitFor(() => received.length === 1, 5_000, 'the first snapshot');
    watch.pause();
    for (let i = 0; i < 45; i++) control.plane.faults.put(FaultSpec.parse({ id: `slow-${i}`, match: { destination: 'payments' }, abort: { status: 503 }, ttl: '1m' }));
    watch.resume();
    await waitFor(() => received.at(-1) === control.plane.state.version, 10_000, 'the current snapshot');
    watch.destroy();
    expect(received.length - 1, `${received.length - 1} snapshots read for 45 states`).to.be.lessThan(45);
  });

  it('GET /sidecars?health= lists only the sidecars of that health, and says which healths there are', async () => {
    const control = await startCounted(configText, join(dir, 'health-plane'));
    planes.push(control);
    control.plane.acknowledge('ready-one', control.plane.state.version, null);
    const get = async (query: string) => {
      const response = await request(`${control.url}/sidecars${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: response.statusCode, body: (await response.body.json()) as { sidecars?: { name: string; health: string }[]; error?: string } };
    };
    // Statuses exist for sidecars that subscribed or acked: one that acked is listed, not connected.
    expect((await get('')).body.sidecars!.map((s) => s.health)).to.deep.equal(['disconnected']);
    expect((await get('?health=disconnected')).body.sidecars!.map((s) => s.name)).to.deep.equal(['ready-one']);
    expect((await get('?health=not-ready')).body.sidecars).to.deep.equal([]);
    const bad = await get('?health=sick');
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.include('ready, not-ready, disconnected');
  });

  it('a registration goes as a delta of that instance to a watch that asks for deltas, whole to one that does not; a config change goes whole', async () => {
    const control = await startCounted(configText, join(dir, 'delta-plane'));
    planes.push(control);
    const withDeltas = await watchRaw(control.url, '?sidecar=checkout&deltas=instances');
    const without = await watchRaw(control.url, '?sidecar=checkout');
    expect(withDeltas.response.headers['x-faultline-deltas']).to.equal('instances');
    expect(without.response.headers['x-faultline-deltas']).to.equal(undefined);
    const snapshots = (w: typeof without) => w.messages.filter((m) => m.event === 'snapshot' || m.event === 'delta');
    await waitFor(() => snapshots(withDeltas).length === 1 && snapshots(without).length === 1, 5_000, 'the first states');
    const first = JSON.parse(snapshots(withDeltas)[0]!.data) as DesiredState;
    await control.plane.register({ name: 'checkout-blue', service: 'checkout', address: '127.0.0.1:20001', labels: { version: 'v2' } });
    const version = await waitFor(() => control.plane.state.instances.length === 1 && control.plane.state.version, 5_000, 'the registration');
    await waitFor(() => snapshots(withDeltas).length === 2 && snapshots(without).length === 2, 5_000, 'the second states');
    const delta = snapshots(withDeltas)[1]!;
    expect(delta.event).to.equal('delta');
    const parsed = JSON.parse(delta.data) as InstanceDelta;
    expect(parsed).to.deep.equal({ version, base: first.version, put: [{ name: 'checkout-blue', service: 'checkout', address: '127.0.0.1:20001', labels: { version: 'v2' } }], delete: [] });
    expect(applyDelta(first, parsed)).to.deep.equal(control.plane.state);
    expect(snapshots(without)[1]!.event).to.equal('snapshot');
    expect(await control.plane.deregister('checkout-blue')).to.equal(true);
    await waitFor(() => snapshots(withDeltas).length === 3, 5_000, 'the deregistration');
    expect(JSON.parse(snapshots(withDeltas)[2]!.data)).to.include({ base: version }).and.to.deep.include({ put: [], delete: ['checkout-blue'] });
    await control.plane.putConfig(`${configText}\n# changed\n`, 'test');
    await waitFor(() => snapshots(withDeltas).length === 4, 5_000, 'the config change');
    expect(snapshots(withDeltas)[3]!.event).to.equal('snapshot');
    withDeltas.close();
    without.close();
  });

  it('a sidecar rebuilds the state from deltas, version for version', async () => {
    const control = await startCounted(configText, join(dir, 'rebuild-plane'));
    planes.push(control);
    const client = new ControlClient({ url: control.url, token: TOKEN, sidecar: 'checkout', stateDir: join(dir, 'rebuild-client') });
    try {
      await client.start(5_000);
      const applied: DesiredState[] = [];
      client.onState(({ state }) => void applied.push(state));
      for (let i = 0; i < 3; i++) {
        await control.plane.register({ name: `checkout-${i}`, service: 'checkout', address: `127.0.0.1:${20_010 + i}`, labels: {} });
        const version = await waitFor(() => control.plane.state.instances.length === i + 1 && control.plane.state.version, 5_000, 'the registration');
        expect(await control.plane.waitForAcks(version, 5_000)).to.equal(true);
        expect(applied.at(-1)).to.deep.equal(control.plane.state);
      }
      // One stream all along: a delta it could not rebuild from would have broken it (and the next started whole).
      expect(control.count('GET /v1/watch')).to.equal(1);
    } finally {
      await client.close();
    }
  });

  it('a delta is refused unless the state it applies to is its base, and makes its version', () => {
    const base: DesiredState = { version: 'v0', config: 'mesh: {}', faults: [], instances: [] };
    const instance = { name: 'a-1', service: 'a', address: '127.0.0.1:1', labels: {} };
    expect(() => applyDelta(base, { version: 'x', base: 'other', put: [instance], delete: [] })).to.throw(/a delta from other came to a sidecar that holds v0/);
    expect(() => applyDelta(base, { version: 'not-its-hash', base: 'v0', put: [instance], delete: [] })).to.throw(/out of step/);
  });
});
