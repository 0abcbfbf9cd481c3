// Load-balancing policies, on their own: distributions within statistical bounds, load awareness,
// ring-hash stickiness and minimal remapping.
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { EndpointState } from '../../../src/http/endpoint-state.ts';
import { createBalancer } from '../../../src/proxy/balancer/index.ts';
import { buildRing } from '../../../src/proxy/balancer/ring-hash.ts';
import type { LoadBalancerSpec } from '../../../src/config/snapshot.ts';

function endpoints(n: number): EndpointState[] {
  return Array.from({ length: n }, (_, i) => new EndpointState({
    service: 's', address: `127.0.0.1:${9000 + i}`, labels: {}, dial: `127.0.0.1:${9000 + i}`, sidecar: undefined,
  }));
}

const spec = (policy: LoadBalancerSpec['policy'], hashHeader?: string): LoadBalancerSpec =>
  ({ policy, hashHeader, virtualNodes: 160, decayMs: 10_000 });

function counts(picks: EndpointState[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of picks) out.set(p.address, (out.get(p.address) ?? 0) + 1);
  return out;
}

/** Pearson's chi-squared statistic against a uniform spread. */
function chiSquared(observed: number[], total: number): number {
  const expected = total / observed.length;
  return observed.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
}

/**
 * Runs `body` with Math.random (what the balancers draw from) replaced by a seeded source: a
 * statistical bound at p > 0.001 would otherwise fail one run in a thousand by luck alone.
 */
function seeded<T>(seed: string, body: () => T): T {
  const random = Math.random;
  Math.random = seedrandom.alea(seed);
  try {
    return body();
  } finally {
    Math.random = random;
  }
}

describe('balancers', () => {
  it('round-robin visits each endpoint in turn', () => {
    const list = endpoints(3);
    const balancer = createBalancer(spec('round-robin'));
    const picks = Array.from({ length: 9 }, () => balancer.pick(list, { headers: {} }).address);
    expect(picks).to.deep.equal([0, 1, 2, 0, 1, 2, 0, 1, 2].map((i) => list[i]!.address));
  });

  it('random spreads uniformly (chi-squared, 4 degrees of freedom, p > 0.001)', () => {
    const list = endpoints(5);
    const balancer = createBalancer(spec('random'));
    const c = counts(seeded('random', () => Array.from({ length: 20_000 }, () => balancer.pick(list, { headers: {} }))));
    expect(c.size).to.equal(5);
    expect(chiSquared([...c.values()], 20_000)).to.be.below(18.47);
  });

  it('least-request (P2C) sends to the less loaded of two, and never to the busiest of three', () => {
    const list = endpoints(3);
    list[0]!.load.active = 10;
    list[1]!.load.active = 0;
    list[2]!.load.active = 5;
    const balancer = createBalancer(spec('least-request'));
    const c = counts(Array.from({ length: 3_000 }, () => balancer.pick(list, { headers: {} })));
    expect(c.get(list[0]!.address) ?? 0).to.equal(0);
    // endpoint 1 wins both pairs it is in (2 of 3 pairs), endpoint 2 the remaining one.
    expect(c.get(list[1]!.address)! / 3_000).to.be.within(0.6, 0.73);
  });

  it('least-request spreads evenly when loads are equal', () => {
    const list = endpoints(4);
    const balancer = createBalancer(spec('least-request'));
    const c = counts(seeded('least-request', () => Array.from({ length: 20_000 }, () => balancer.pick(list, { headers: {} }))));
    expect(chiSquared([...c.values()], 20_000)).to.be.below(16.27);
  });

  it('ewma prefers the endpoint with lower latency, weighed by requests in flight', () => {
    const list = endpoints(2);
    list[0]!.load.ewmaMs = 200;
    list[1]!.load.ewmaMs = 10;
    const balancer = createBalancer(spec('ewma'));
    expect(balancer.pick(list, { headers: {} })).to.equal(list[1]);
    list[1]!.load.active = 30; // 10 × 31 = 310 > 200 × 1
    expect(balancer.pick(list, { headers: {} })).to.equal(list[0]);
  });

  it('ewma tracks peaks at once and forgets them with time', () => {
    const [endpoint] = endpoints(1);
    endpoint!.load.recordLatency(500, 1_000, 10_000);
    expect(endpoint!.load.ewmaMs).to.equal(500);
    endpoint!.load.recordLatency(10, 31_000, 10_000); // 3 decay periods later
    expect(endpoint!.load.ewmaMs).to.be.within(30, 40);
  });

  it('ring-hash sends the same key to the same endpoint', () => {
    const list = endpoints(5);
    const balancer = createBalancer(spec('ring-hash', 'x-user'));
    for (const user of ['ann', 'bob', 'cyd', 'dee']) {
      const first = balancer.pick(list, { headers: { 'x-user': user } });
      for (let i = 0; i < 20; i++) expect(balancer.pick(list, { headers: { 'x-user': user } })).to.equal(first);
    }
  });

  it('ring-hash spreads keys near evenly', () => {
    const list = endpoints(4);
    const balancer = createBalancer(spec('ring-hash', 'x-user'));
    const c = counts(Array.from({ length: 8_000 }, (_, i) => balancer.pick(list, { headers: { 'x-user': `user-${i}` } })));
    for (const n of c.values()) expect(n / 8_000).to.be.within(0.17, 0.33);
  });

  it('ring-hash moves only the keys of an endpoint that leaves', () => {
    const list = endpoints(5);
    const balancer = createBalancer(spec('ring-hash', 'x-user'));
    const keys = Array.from({ length: 5_000 }, (_, i) => `user-${i}`);
    const before = keys.map((k) => balancer.pick(list, { headers: { 'x-user': k } }));
    const leaving = list[2]!;
    const after = keys.map((k) => balancer.pick(list.filter((e) => e !== leaving), { headers: { 'x-user': k } }));
    let moved = 0;
    keys.forEach((_, i) => {
      if (before[i] !== leaving) expect(after[i], `key ${i}`).to.equal(before[i]);
      else moved++;
    });
    expect(moved / keys.length).to.be.within(0.1, 0.3);
  });

  it('ring-hash picks at random when the request has no key', () => {
    const list = endpoints(3);
    const balancer = createBalancer(spec('ring-hash', 'x-user'));
    const c = counts(Array.from({ length: 3_000 }, () => balancer.pick(list, { headers: {} })));
    expect(c.size).to.equal(3);
  });

  it('builds a sorted ring of virtualNodes points per endpoint', () => {
    const ring = buildRing(endpoints(3), 160);
    expect(ring.points.length).to.equal(3 * 160);
    for (let i = 1; i < ring.points.length; i++) expect(ring.points[i]! >= ring.points[i - 1]!).to.equal(true);
  });
});
