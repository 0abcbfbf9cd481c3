// The Mesh page's numbers, from the control plane's side (console/live.ts): request.done events relayed
// as the sidecars' uplinks relay them, aggregated per edge (the caller's outbound view) and per service
// (what its sidecars served, health checks left out) into windows that the test ends itself; open
// breakers and ejected endpoints followed from their events; the faults with the sidecars' counts; and
// the sidecars told to send request.done only while a reader is attached.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LiveMesh } from '../../src/control/console/live.ts';
import { ControlPlane } from '../../src/control/plane.ts';
import { FileStore } from '../../src/control/store.ts';
import { parseFault } from '../../src/faults/admin.ts';
import type { MeshEvent } from '../../src/telemetry/events.ts';
import { silentLogger } from '../../src/telemetry/log.ts';

const CONFIG = stringify({
  mesh: { name: 'live' },
  services: [
    { name: 'front', endpoints: [{ address: '127.0.0.1:1' }], calls: ['back'] },
    { name: 'back', endpoints: [{ address: '127.0.0.1:2', labels: { version: 'v1' } }, { address: '127.0.0.1:3' }] },
  ],
  sidecars: [
    { service: 'front', app: '127.0.0.1:1', outbound: '127.0.0.1:11', inbound: '127.0.0.1:21', admin: '127.0.0.1:31' },
    { name: 'back-1', service: 'back', app: '127.0.0.1:2', inbound: '127.0.0.1:22', admin: '127.0.0.1:32' },
    { name: 'back-2', service: 'back', app: '127.0.0.1:3', inbound: '127.0.0.1:23', admin: '127.0.0.1:33' },
  ],
});

let seq = 0;
function done(sidecar: string, direction: 'inbound' | 'outbound', source: string, service: string | null, status: number, durationMs: number): MeshEvent {
  return {
    type: 'request.done', seq: ++seq, time: Date.now(), monotonic: seq, sidecar, requestId: `r${seq}`, traceId: null, direction, source, service,
    route: null, endpoint: null, method: 'GET', protocol: 'http1', authority: 'x', path: '/', status, grpcStatus: null, flags: [], attempts: 1, durationMs,
    requestBytes: 0, responseBytes: 0, faults: [],
  } as MeshEvent;
}

describe('console live numbers', () => {
  let plane: ControlPlane;
  let now: number;
  let live: LiveMesh;

  beforeEach(async () => {
    plane = await ControlPlane.open(new FileStore(await mkdtemp(join(tmpdir(), 'faultline-live-'))), silentLogger, CONFIG);
    now = 1_800_000_000_000;
    live = new LiveMesh(plane, { tickMs: 3_600_000, now: () => now });
  });
  afterEach(() => {
    live.close();
    plane.close();
  });

  it('counts rps, error % and p99 per edge and per service over the window, health checks left out', () => {
    const detach = live.attach(() => undefined);
    // 200 calls front → back in 2 s: 10 failed (5 × 503, 5 unanswered), durations 1..200 ms.
    for (let i = 1; i <= 200; i++) plane.relayFrom('front', done('front', 'outbound', 'front', 'back', i <= 5 ? 503 : i <= 10 ? 0 : 200, i));
    // back's sidecars served 150 of them (the rest failed before), and health checks that do not count.
    for (let i = 1; i <= 150; i++) plane.relayFrom(i % 2 ? 'back-1' : 'back-2', done(i % 2 ? 'back-1' : 'back-2', 'inbound', 'front', null, 200, 2));
    for (let i = 0; i < 40; i++) plane.relayFrom('back-1', done('back-1', 'inbound', 'faultline-health-check', null, 200, 1));
    now += 2_000;
    const frame = live.frame();
    expect(frame.edges).to.deep.equal([{ source: 'front', destination: 'back', declared: true, rps: 100, errorPct: 5, p99: 198 }]);
    const back = frame.services.find((s) => s.name === 'back')!;
    expect([back.rps, back.errorPct, back.p99]).to.deep.equal([75, 0, 2]);
    expect(back.endpoints).to.deep.equal([{ address: '127.0.0.1:2', labels: { version: 'v1' } }, { address: '127.0.0.1:3', labels: {} }]);
    // The next window starts empty: an idle edge stays, at 0.
    now += 1_000;
    expect(live.frame().edges).to.deep.equal([{ source: 'front', destination: 'back', declared: true, rps: 0, errorPct: 0, p99: null }]);
    detach();
  });

  it('shows an edge seen but not declared, and counts nothing while no reader is attached', () => {
    plane.relayFrom('back-1', done('back-1', 'outbound', 'back', 'front', 200, 1));
    let detach = live.attach(() => undefined);
    now += 1_000;
    expect(live.frame().edges.map((e) => `${e.source}>${e.destination}:${e.rps}`)).to.deep.equal(['front>back:0']);
    plane.relayFrom('back-1', done('back-1', 'outbound', 'back', 'front', 200, 1));
    now += 1_000;
    expect(live.frame().edges.map((e) => [`${e.source}>${e.destination}`, e.declared, e.rps])).to.deep.equal([['back>front', false, 1], ['front>back', true, 0]]);
    detach();
    detach = live.attach(() => undefined);
    detach();
  });

  it('asks the sidecars for request.done only while a reader is attached', () => {
    expect(plane.collectsRequests).to.equal(false);
    const one = live.attach(() => undefined);
    const two = live.attach(() => undefined);
    expect(plane.collectsRequests).to.equal(true);
    one();
    one();
    expect(plane.collectsRequests).to.equal(true);
    two();
    expect(plane.collectsRequests).to.equal(false);
  });

  it('follows open breakers and ejected endpoints until they close and come back', () => {
    const at = { seq: 0, time: now, monotonic: 0, sidecar: 'front' };
    plane.relayFrom('front', { ...at, type: 'breaker.state', service: 'back', subset: '', from: 'closed', to: 'open', reason: 'failures', trips: 1, openForMs: 2_000 } as MeshEvent);
    plane.relayFrom('front', { ...at, type: 'outlier.ejected', service: 'back', endpoint: '127.0.0.1:2', ejections: 1, durationMs: 5_000, reason: '5 consecutive 5xx', detector: 'consecutive-5xx', figures: {} } as MeshEvent);
    let frame = live.frame();
    expect(frame.breakers.map((b) => [b.service, b.state, b.sidecar])).to.deep.equal([['back', 'open', 'front']]);
    expect(frame.ejected.map((e) => [e.service, e.endpoint, e.reason])).to.deep.equal([['back', '127.0.0.1:2', '5 consecutive 5xx']]);
    plane.relayFrom('front', { ...at, type: 'breaker.state', service: 'back', subset: '', from: 'open', to: 'half-open', reason: 'cool-down over', trips: 1, openForMs: 0 } as MeshEvent);
    expect(live.frame().breakers.map((b) => b.state)).to.deep.equal(['half-open']);
    plane.relayFrom('front', { ...at, type: 'breaker.state', service: 'back', subset: '', from: 'half-open', to: 'closed', reason: 'probe passed', trips: 0, openForMs: 0 } as MeshEvent);
    plane.relayFrom('front', { ...at, type: 'outlier.restored', service: 'back', endpoint: '127.0.0.1:2' } as MeshEvent);
    frame = live.frame();
    expect([frame.breakers, frame.ejected]).to.deep.equal([[], []]);
  });

  it('gives each runtime fault the times the sidecars applied it and how many hold it', () => {
    plane.faults.put(parseFault(JSON.stringify({ match: { destination: 'back' }, abort: { status: 503 }, ttl: '1m' }), 'f1', plane.snapshot));
    const at = { seq: 0, time: now, monotonic: 0, sidecar: 'front', type: 'fault.applied', action: 'abort', point: 'request', requestId: null, traceId: null, attempt: 0, source: 'front', destination: 'back', endpoint: null, details: {} };
    for (let i = 1; i <= 3; i++) plane.relayFrom('front', { ...at, faultId: 'f1', ordinal: i } as unknown as MeshEvent);
    plane.relayFrom('front', { ...at, faultId: 'other', ordinal: 1 } as unknown as MeshEvent);
    const [fault] = live.frame().faults as { id: string; applied: number; heldBy: number; sidecars: number }[];
    expect([fault!.id, fault!.applied, fault!.heldBy, fault!.sidecars]).to.deep.equal(['f1', 3, 0, 0]);
  });
});
