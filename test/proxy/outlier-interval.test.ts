// The interval detectors of outlier detection, on a fake clock: failure percentage (Envoy's threshold,
// requestVolume and minimumHosts) and latency against the siblings' median (factor, minimum, volume,
// hosts), under the same maxEjectionPercent and ejection-time rules as consecutive errors; each
// ejection says which detector and with what numbers. Then over real sockets: an instance that hangs
// until the per-try timeout is slow to the latency detector, not unseen.
import { expect } from 'chai';
import { EndpointRegistry, type Cluster } from '../../src/proxy/endpoints.ts';
import { select } from '../../src/faults/endpoints.ts';
import { OutlierDetector } from '../../src/proxy/outlier.ts';
import { EventBus, type MeshEvents } from '../../src/telemetry/events.ts';
import { call, load } from '../helpers/client.ts';
import { sidecarEntry, snapshotOf, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor } from '../helpers/net.ts';

function cluster(outlierDetection: Record<string, unknown>, endpoints: number): Cluster {
  const snapshot = snapshotOf({
    mesh: { name: 'o' },
    services: [{ name: 's', endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `127.0.0.1:${9000 + i}` })), outlierDetection }],
  });
  return new EndpointRegistry().reconcile(snapshot).get('s')!;
}

describe('outlier detection: interval detectors (fake clock)', () => {
  let now: number;
  let ejected: MeshEvents['outlier.ejected'][];
  let detector: OutlierDetector;
  /** `n` tries at endpoint i: `failed` of them 503, the rest 200, each taking `ms`. */
  const tries = (c: Cluster, i: number, n: number, failed = 0, ms = 5) => {
    for (let k = 0; k < n; k++) detector.record(c, c.endpoints[i]!, { status: k < failed ? 503 : 200, latencyMs: ms });
  };
  const sweep = (c: Cluster) => {
    detector.sync(new Map([['s', c]]));
    detector.sweep('s');
  };
  const out = (c: Cluster) => c.endpoints.map((e, i) => (e.available ? -1 : i)).filter((i) => i >= 0);

  beforeEach(() => {
    now = 1_000_000;
    ejected = [];
    const bus = new EventBus('test');
    bus.on('outlier.ejected', (e) => ejected.push(e));
    detector = new OutlierDetector(bus, () => now);
  });
  afterEach(() => detector.close());

  describe('failure percentage', () => {
    // consecutive5xx high enough never to act here: only the interval detector can eject.
    const config = { consecutive5xx: 1000, maxEjectionPercent: 100, failurePercentage: { threshold: 80, minimumHosts: 3, requestVolume: 10 } };

    it('ejects an endpoint whose failures reached the threshold, at the sweep, with its numbers', () => {
      const c = cluster(config, 3);
      tries(c, 0, 10, 8);
      tries(c, 1, 10, 1);
      tries(c, 2, 10, 7);
      expect(out(c)).to.deep.equal([]);
      sweep(c);
      expect(out(c)).to.deep.equal([0]);
      expect(ejected).to.have.length(1);
      expect(ejected[0]).to.deep.include({ endpoint: '127.0.0.1:9000', detector: 'failure-percentage', ejections: 1 });
      expect(ejected[0]!.figures).to.deep.equal({ requests: 10, failures: 8, failurePercent: 80, threshold: 80, hostsJudged: 3 });
      expect(ejected[0]!.reason).to.equal('80 % of 10 tries failed in the interval (threshold 80 %, 3 endpoints judged)');
    });

    it('counts local-origin failures (connect failures, resets, timeouts) as failures', () => {
      const c = cluster(config, 3);
      for (let k = 0; k < 10; k++) detector.record(c, c.endpoints[0]!, { localFailure: k % 2 ? 'reset' : 'timeout', latencyMs: 100 });
      tries(c, 1, 10);
      tries(c, 2, 10);
      sweep(c);
      expect(out(c)).to.deep.equal([0]);
    });

    it('judges only endpoints with requestVolume tries, and only when minimumHosts of them had it', () => {
      const c = cluster(config, 3);
      tries(c, 0, 10, 10);
      tries(c, 1, 10);
      tries(c, 2, 9);
      sweep(c);
      expect(out(c), 'two endpoints with the volume, three needed').to.deep.equal([]);
      tries(c, 0, 9, 9);
      tries(c, 1, 10);
      tries(c, 2, 10);
      sweep(c);
      expect(out(c), 'the failing one below the volume').to.deep.equal([]);
      tries(c, 0, 10, 10);
      tries(c, 1, 10);
      tries(c, 2, 10);
      sweep(c);
      expect(out(c), 'each interval counts afresh').to.deep.equal([0]);
    });

    it('honours maxEjectionPercent (but one is always allowed)', () => {
      const c = cluster({ ...config, maxEjectionPercent: 40 }, 5);
      for (let i = 0; i < 5; i++) tries(c, i, 10, i < 3 ? 10 : 0);
      sweep(c);
      expect(out(c)).to.deep.equal([0, 1]);
    });
  });

  describe('latency', () => {
    const config = { consecutive5xx: 1000, interval: '1s', baseEjectionTime: '10s', maxEjectionPercent: 34, latency: { percentile: 90, factor: 3, minimum: '50ms', requestVolume: 20, minimumHosts: 3 } };

    it('ejects the endpoint whose p90 is above factor × the siblings\' median and the minimum; returns it as today', () => {
      const c = cluster(config, 3);
      tries(c, 0, 20, 0, 4);
      tries(c, 1, 20, 0, 6);
      tries(c, 2, 20, 0, 300);
      sweep(c);
      expect(out(c)).to.deep.equal([2]);
      expect(ejected[0]).to.deep.include({ endpoint: '127.0.0.1:9002', detector: 'latency', durationMs: 10_000 });
      expect(ejected[0]!.figures).to.deep.include({ percentile: 90, latencyMs: 300, siblingsMedianMs: 5, factor: 3, minimumMs: 50, requests: 20 });
      expect(ejected[0]!.reason).to.equal("p90 300 ms over 20 tries > 3 × the siblings' median p90 5 ms (and > minimum 50 ms)");
      now += 10_000;
      sweep(c);
      expect(out(c)).to.deep.equal([]);
    });

    it('ejects nothing below the absolute minimum, or within factor of the siblings', () => {
      const c = cluster(config, 3);
      tries(c, 0, 20, 0, 2);
      tries(c, 1, 20, 0, 2);
      tries(c, 2, 20, 0, 40);
      sweep(c);
      expect(out(c), '20× slower but under 50 ms').to.deep.equal([]);
      tries(c, 0, 20, 0, 100);
      tries(c, 1, 20, 0, 100);
      tries(c, 2, 20, 0, 290);
      sweep(c);
      expect(out(c), 'under 3 × the siblings').to.deep.equal([]);
    });

    it('judges only endpoints with requestVolume timed tries, when minimumHosts had them; uses the percentile, not the mean', () => {
      const c = cluster(config, 3);
      tries(c, 0, 20, 0, 4);
      tries(c, 1, 19, 0, 4);
      tries(c, 2, 20, 0, 300);
      sweep(c);
      expect(out(c), 'one sibling short of its volume').to.deep.equal([]);
      tries(c, 0, 20, 0, 4);
      tries(c, 1, 20, 0, 4);
      // 17 fast and 3 slow: its p90 is slow, its median is not.
      tries(c, 2, 17, 0, 4);
      tries(c, 2, 3, 0, 300);
      sweep(c);
      expect(out(c)).to.deep.equal([2]);
      expect(ejected[0]!.figures.latencyMs).to.equal(300);
    });

    it('honours maxEjectionPercent: two slow endpoints of four, one ejected', () => {
      const c = cluster({ ...config, latency: { ...config.latency, minimumHosts: 3 } }, 4);
      tries(c, 0, 20, 0, 4);
      tries(c, 1, 20, 0, 4);
      tries(c, 2, 20, 0, 300);
      tries(c, 3, 20, 0, 300);
      sweep(c);
      // The siblings' median of each slow one is 4 ms (4, 4, 300): both qualify, one is allowed.
      expect(out(c)).to.have.length(1);
      expect(ejected).to.have.length(1);
    });
  });
});

describe('outlier detection: latency over real sockets', function () {
  this.timeout(20_000);

  it('counts a try cut by the per-try timeout at the time it was cut: the hanging instance is ejected by latency', async () => {
    const apps = await Promise.all([0, 1, 2].map((i) => startUpstream(`s-${i}`)));
    const config = {
      mesh: { name: 'hang' },
      services: [
        { name: 'c', endpoints: [{ address: await freeAddress() }] },
        {
          name: 's',
          loadBalancer: 'round-robin',
          endpoints: apps.map((a) => ({ address: a.address })),
          // consecutive errors set out of reach: only the latency detector may eject.
          outlierDetection: { consecutive5xx: 1000, interval: '300ms', baseEjectionTime: '30s', maxEjectionPercent: 34, latency: { minimum: '50ms', requestVolume: 3, minimumHosts: 3 } },
        },
      ],
      routes: [{ name: 'to-s', match: { host: 's' }, destinations: [{ service: 's' }], retries: { attempts: 2, perTryTimeout: '150ms', retryOn: ['reset'] } }],
      sidecars: [await sidecarEntry('c', await freeAddress())],
      faults: [{ id: 'hangs', at: 'attempt', match: { destination: 's', endpoints: { count: 1 } }, hang: {} }],
    };
    const sidecar = await startSidecar(config, 'c');
    try {
      const ejected: MeshEvents['outlier.ejected'][] = [];
      sidecar.events.on('outlier.ejected', (e) => ejected.push(e));
      const hanging = [...sidecar.faults.all()][0]!;
      await waitFor(async () => {
        await load(9, 3, () => call(sidecar.addresses.outbound!, 's'));
        return ejected.length > 0;
      }, 10_000, 'an ejection');
      const [chosen] = [...select({ count: 1 }, 0, apps.map((a) => ({ address: a.address, labels: {} })))];
      expect(ejected).to.have.length(1);
      expect(ejected[0]).to.deep.include({ service: 's', endpoint: chosen, detector: 'latency' });
      expect(ejected[0]!.figures.latencyMs).to.be.at.least(150);
      expect(hanging.counter.applied).to.be.at.least(3);
    } finally {
      await sidecar.close();
      for (const app of apps) await app.close();
    }
  });
});
