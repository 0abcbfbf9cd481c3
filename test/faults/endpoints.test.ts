// A fault's endpoint selector: labels, a seeded share or count of a service's instances, chosen the
// same way by every replay with the same seed and stable when instances come and go; the schema's
// refusals; and the match that holds only for calls to a chosen instance.
import { expect } from 'chai';
import { ActiveFault, type FaultInput } from '../../src/faults/active.ts';
import { endpointRank, select, type EndpointSelectorConfig } from '../../src/faults/endpoints.ts';
import { FaultSpec } from '../../src/faults/schema.ts';

const endpoints = (n: number, labels: (i: number) => Record<string, string> = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:8080`, labels: labels(i) }));

const chosen = (config: EndpointSelectorConfig, seed: number, list: ReturnType<typeof endpoints>) => [...select(config, seed, list)].sort();

describe('endpoint selector', () => {
  it('labels: exactly the endpoints that carry them all', () => {
    const list = endpoints(6, (i) => ({ version: i < 2 ? 'v2' : 'v1', zone: i % 2 ? 'b' : 'a' }));
    expect(chosen({ labels: { version: 'v2' } }, 0, list)).to.deep.equal(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(chosen({ labels: { version: 'v2', zone: 'b' } }, 0, list)).to.deep.equal(['10.0.0.2:8080']);
    expect(chosen({ labels: { version: 'v3' } }, 0, list)).to.deep.equal([]);
  });

  it('percent: ceil(n × percent / 100), so at least one of any service when above 0', () => {
    for (const [n, percent, k] of [[3, 33, 1], [3, 34, 2], [3, 100 / 3, 1], [10, 30, 3], [10, 31, 4], [1, 1, 1], [7, 100, 7], [11, 100 / 11 * 5, 5]] as const) {
      expect(select({ percent }, 5, endpoints(n)).size, `${percent} % of ${n}`).to.equal(k);
    }
  });

  it('count: that many, or all when fewer; labels narrow first', () => {
    expect(select({ count: 1 }, 0, endpoints(3)).size).to.equal(1);
    expect(select({ count: 5 }, 0, endpoints(3)).size).to.equal(3);
    const list = endpoints(6, (i) => ({ version: i < 3 ? 'v2' : 'v1' }));
    const picked = chosen({ labels: { version: 'v1' }, count: 2 }, 9, list);
    expect(picked).to.have.length(2);
    for (const address of picked) expect(list.find((e) => e.address === address)!.labels.version).to.equal('v1');
  });

  it('the first k by a rank drawn from (seed, address) alone: same seed, same instances; the seeds spread', () => {
    const list = endpoints(10);
    const again = [...list].reverse();
    expect(chosen({ percent: 30 }, 42, list)).to.deep.equal(chosen({ percent: 30 }, 42, again));
    const ranked = [...list].sort((a, b) => endpointRank(42, a.address) - endpointRank(42, b.address)).slice(0, 3).map((e) => e.address).sort();
    expect(chosen({ percent: 30 }, 42, list)).to.deep.equal(ranked);
    // Over 40 seeds, "one of ten" lands on at least 6 different instances (a fixed choice would be 1).
    const firsts = new Set(Array.from({ length: 40 }, (_, seed) => [...select({ count: 1 }, seed, list)][0]));
    expect(firsts.size).to.be.at.least(6);
  });

  it('stable when instances come and go: the others keep their ranks', () => {
    const list = endpoints(12);
    const before = select({ count: 3 }, 7, list);
    // Remove instances that were not chosen: the choice stays.
    const fewer = list.filter((e, i) => before.has(e.address) || i % 2 === 0);
    expect(select({ count: 3 }, 7, fewer)).to.deep.equal(before);
    // Add one: the choice changes only if the newcomer ranks within the first three, and then only by it.
    const newcomer = { address: '10.0.1.1:8080', labels: {} };
    const after = select({ count: 3 }, 7, [...list, newcomer]);
    const kept = [...after].filter((a) => before.has(a));
    expect(kept.length).to.be.at.least(2);
    expect([...after].filter((a) => !before.has(a)).every((a) => a === newcomer.address)).to.equal(true);
  });
});

describe('endpoint selector in a fault', () => {
  const issues = (spec: Record<string, unknown>) => {
    const result = FaultSpec.safeParse({ id: 'f', delay: { fixed: '1s' }, ...spec });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('is refused without a destination, at request, empty, or with both percent and count — the field named', () => {
    expect(issues({ at: 'attempt', match: { endpoints: { count: 1 } } })).to.deep.equal(['match.endpoints: an endpoint selector needs match.destination: the service whose instances it chooses']);
    expect(issues({ match: { destination: 'pay', endpoints: { count: 1 } } })[0]).to.match(/^at: a fault on chosen endpoints acts where the endpoint is known/);
    expect(issues({ at: 'inbound', match: { destination: 'pay', endpoints: {} } })[0]).to.match(/^match\.endpoints: labels, percent or count/);
    expect(issues({ at: 'inbound', match: { destination: 'pay', endpoints: { count: 1, percent: 50 } } })).to.deep.equal(['match.endpoints.count: percent or count, not both']);
    expect(issues({ at: 'inbound', match: { destination: 'pay', endpoints: { percent: 0 } } })[0]).to.match(/^match\.endpoints\.percent: /);
    expect(issues({ at: 'attempt', match: { destination: 'pay', endpoints: { count: 1 } } })).to.deep.equal([]);
  });

  it('matches only calls whose endpoint is a chosen one; before balancing (no endpoint) none', () => {
    const written = { id: 'slow-one', at: 'attempt', seed: 3, match: { destination: 'pay', endpoints: { count: 1 } }, delay: { fixed: '1s' } };
    const fault = new ActiveFault(FaultSpec.parse(written), 'config', undefined);
    expect([...fault.slots]).to.deep.equal(['endpoint']);
    const peers = endpoints(3);
    const base: FaultInput = { source: 'web', destination: 'pay', route: undefined, method: 'GET', path: '/', headers: {}, peers };
    const hits = peers.filter((endpoint) => fault.matches({ ...base, endpoint })).map((e) => e.address);
    expect(hits).to.deep.equal([...select({ count: 1 }, 3, peers)]);
    expect(fault.matches({ ...base, endpoint: undefined })).to.equal(false);
    const inbound = new ActiveFault(FaultSpec.parse({ ...written, at: 'inbound' }), 'config', undefined);
    expect([...inbound.slots]).to.deep.equal(['inbound']);
  });
});
