// Passive outlier detection: ejection on consecutive errors, ejection time growing with each
// ejection and decaying, the max-ejection-percent cap; then the same over real sockets.
import { expect } from 'chai';
import { EndpointRegistry, type Cluster } from '../../src/proxy/endpoints.ts';
import { OutlierDetector } from '../../src/proxy/outlier.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { EventBus, type MeshEvents } from '../../src/telemetry/events.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, snapshotOf, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor } from '../helpers/net.ts';

function cluster(outlierDetection: Record<string, unknown>, endpoints = 4): Cluster {
  const snapshot = snapshotOf({
    mesh: { name: 'o' },
    services: [{ name: 's', endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `127.0.0.1:${9000 + i}` })), outlierDetection }],
  });
  return new EndpointRegistry().reconcile(snapshot).get('s')!;
}

describe('outlier detection (fake clock)', () => {
  let now: number;
  let events: MeshEvents['outlier.ejected'][];
  let detector: OutlierDetector;
  const fail = (c: Cluster, i: number, n: number, status = 500) => {
    for (let k = 0; k < n; k++) detector.record(c, c.endpoints[i]!, { status });
  };

  beforeEach(() => {
    now = 1_000_000;
    events = [];
    const bus = new EventBus('test');
    bus.on('outlier.ejected', (e) => events.push(e));
    detector = new OutlierDetector(bus, () => now);
  });
  afterEach(() => detector.close());

  it('ejects after consecutive5xx errors in a row, not before', () => {
    const c = cluster({ consecutive5xx: 3, interval: '1s', baseEjectionTime: '10s', maxEjectionPercent: 100 });
    fail(c, 0, 2);
    expect(c.endpoints[0]!.available).to.equal(true);
    fail(c, 0, 1);
    expect(c.endpoints[0]!.available).to.equal(false);
    expect(events[0]).to.include({ service: 's', endpoint: '127.0.0.1:9000', ejections: 1, durationMs: 10_000 });
  });

  it('resets the count on a success', () => {
    const c = cluster({ consecutive5xx: 3, maxEjectionPercent: 100 });
    fail(c, 0, 2);
    detector.record(c, c.endpoints[0]!, { status: 200 });
    fail(c, 0, 2);
    expect(c.endpoints[0]!.available).to.equal(true);
  });

  it('counts gateway errors (including connect failures) separately when configured', () => {
    const c = cluster({ consecutive5xx: 10, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 });
    detector.record(c, c.endpoints[0]!, { status: 500 });
    detector.record(c, c.endpoints[0]!, { localFailure: 'connect-failure' });
    expect(c.endpoints[0]!.available).to.equal(true);
    detector.record(c, c.endpoints[0]!, { status: 503 });
    expect(c.endpoints[0]!.available).to.equal(false);
    expect(events[0]!.reason).to.equal('2 consecutive gateway errors');
  });

  it('returns the endpoint at the first sweep after its time is up, and grows the time with each ejection', () => {
    const c = cluster({ consecutive5xx: 1, interval: '1s', baseEjectionTime: '10s', maxEjectionTime: '25s', maxEjectionPercent: 100 });
    detector.sync(new Map([['s', c]]));
    const durations: number[] = [];
    for (let round = 0; round < 3; round++) {
      fail(c, 0, 1);
      durations.push(events.at(-1)!.durationMs);
      now += events.at(-1)!.durationMs - 1;
      detector.sweep('s');
      expect(c.endpoints[0]!.available, 'still ejected just before its time').to.equal(false);
      now += 1;
      detector.sweep('s');
      expect(c.endpoints[0]!.available).to.equal(true);
    }
    expect(durations).to.deep.equal([10_000, 20_000, 25_000]);
  });

  it('lets the ejection count decay by one for each interval without an ejection', () => {
    const c = cluster({ consecutive5xx: 1, interval: '1s', baseEjectionTime: '1s', maxEjectionPercent: 100 });
    detector.sync(new Map([['s', c]]));
    fail(c, 0, 1);
    now += 1_000;
    detector.sweep('s'); // returns it
    fail(c, 0, 1);
    expect(c.endpoints[0]!.outlier.ejections).to.equal(2);
    now += 2_000;
    detector.sweep('s'); // returns it; ejected in this interval, no decay
    detector.sweep('s');
    detector.sweep('s');
    expect(c.endpoints[0]!.outlier.ejections).to.equal(0);
  });

  it('never ejects more than maxEjectionPercent of a service, but always one', () => {
    const c = cluster({ consecutive5xx: 1, maxEjectionPercent: 10 }, 4);
    fail(c, 0, 1);
    fail(c, 1, 1);
    expect(c.endpoints.map((e) => e.available)).to.deep.equal([false, true, true, true]);
    const half = cluster({ consecutive5xx: 1, maxEjectionPercent: 50 }, 4);
    for (let i = 0; i < 4; i++) fail(half, i, 1);
    expect(half.endpoints.filter((e) => !e.available)).to.have.length(2);
  });

  it('ignores client errors', () => {
    const c = cluster({ consecutive5xx: 1, maxEjectionPercent: 100 });
    fail(c, 0, 5, 404);
    expect(c.endpoints[0]!.available).to.equal(true);
  });
});

describe('outlier detection (real sockets)', () => {
  let sidecar: Sidecar;
  let good: Awaited<ReturnType<typeof startUpstream>>;
  let bad: Awaited<ReturnType<typeof startUpstream>>;
  let badFails = true;

  before(async () => {
    good = await startUpstream('good');
    bad = await startUpstream('bad');
    const base = bad.handler;
    bad.handler = (req, res) => (badFails ? res.writeHead(500).end('broken') : base(req, res));
    const config = {
      mesh: { name: 'od' },
      services: [
        { name: 'app', endpoints: [{ address: await freeAddress() }] },
        {
          name: 'pay',
          loadBalancer: 'round-robin',
          endpoints: [{ address: good.address }, { address: bad.address }],
          outlierDetection: { consecutive5xx: 3, interval: '50ms', baseEjectionTime: '300ms', maxEjectionPercent: 50 },
        },
      ],
      sidecars: [await sidecarEntry('app', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'app');
  });

  after(async () => {
    await sidecar.close();
    await good.close();
    await bad.close();
  });

  it('ejects the failing endpoint, then sends everything to the good one', async () => {
    const restored: string[] = [];
    sidecar.events.on('outlier.restored', (e) => restored.push(e.endpoint));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(sidecar.addresses.outbound!, 'pay')).status);
    expect(statuses.filter((s) => s === 500)).to.have.length(3);
    const after: number[] = [];
    for (let i = 0; i < 10; i++) after.push((await call(sidecar.addresses.outbound!, 'pay')).status);
    expect(after.every((s) => s === 200), String(after)).to.equal(true);
    badFails = false;
    await waitFor(() => restored.includes(bad.address), 3_000, 'the bad endpoint to return');
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add((await call(sidecar.addresses.outbound!, 'pay')).json<{ name: string }>().name);
    expect([...names].sort()).to.deep.equal(['bad', 'good']);
  });
});
