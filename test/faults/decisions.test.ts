// The fault engine's arithmetic, without sockets: delay distributions against their quantiles over
// thousands of samples, percentages within a binomial bound, count rules, and decisions that depend
// on (seed, id, ordinal) alone.
import { expect } from 'chai';
import { ActiveFault } from '../../src/faults/active.ts';
import { delaySampler, Z99 } from '../../src/faults/distributions.ts';
import { decisionRandom } from '../../src/faults/random.ts';
import { FaultSpec, type DelayConfig } from '../../src/faults/schema.ts';

const N = 4_000;

function samples(delay: Record<string, unknown>, n = N): number[] {
  const sample = delaySampler(FaultSpec.parse({ id: 'd', delay }).delay as DelayConfig);
  const random = decisionRandom(7, 'distribution', 1);
  return Array.from({ length: n }, () => sample(random)).sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function fault(spec: Record<string, unknown>): ActiveFault {
  return new ActiveFault(FaultSpec.parse({ id: 'f', abort: { status: 503 }, ...spec }), 'config', undefined);
}

describe('delay distributions', () => {
  it('fixed: always the value', () => {
    expect(new Set(samples({ fixed: '300ms' }, 100))).to.deep.equal(new Set([300]));
  });

  it('uniform: within [min, max], quartiles where they belong', () => {
    const xs = samples({ uniform: { min: '100ms', max: '400ms' } });
    expect(xs[0]).to.be.at.least(100);
    expect(xs.at(-1)).to.be.at.most(400);
    expect(quantile(xs, 0.25)).to.be.closeTo(175, 12);
    expect(quantile(xs, 0.5)).to.be.closeTo(250, 12);
    expect(quantile(xs, 0.75)).to.be.closeTo(325, 12);
  });

  it('normal: mean and the 84th percentile (mean + 1 stddev)', () => {
    const xs = samples({ normal: { mean: '200ms', stddev: '20ms' } });
    expect(mean(xs)).to.be.closeTo(200, 1.5);
    expect(quantile(xs, 0.8413)).to.be.closeTo(220, 2.5);
    expect(quantile(xs, 0.1587)).to.be.closeTo(180, 2.5);
  });

  it('lognormal: the median and p99 it was given', () => {
    const xs = samples({ lognormal: { median: '80ms', p99: '2s' } }, 20_000);
    expect(quantile(xs, 0.5)).to.be.closeTo(80, 80 * 0.05);
    expect(quantile(xs, 0.99)).to.be.closeTo(2000, 2000 * 0.15);
    // and its 90th percentile, from the same μ and σ
    const sigma = (Math.log(2000) - Math.log(80)) / Z99;
    expect(quantile(xs, 0.9)).to.be.closeTo(80 * Math.exp(1.2816 * sigma), 80 * Math.exp(1.2816 * sigma) * 0.08);
  });

  it('pareto: never below the scale, quantiles of xm / (1-q)^(1/α)', () => {
    const xs = samples({ pareto: { scale: '50ms', shape: 2 } });
    expect(xs[0]).to.be.at.least(50);
    for (const q of [0.5, 0.9]) expect(quantile(xs, q)).to.be.closeTo(50 / (1 - q) ** 0.5, (50 / (1 - q) ** 0.5) * 0.06);
  });

  it('max caps every sample; none is negative', () => {
    const xs = samples({ normal: { mean: '10ms', stddev: '50ms' }, max: '60ms' });
    expect(xs[0]).to.equal(0);
    expect(xs.at(-1)).to.equal(60);
  });
});

describe('fault decisions', () => {
  it('fault a percentage of matching requests within a binomial 99.9 % bound', () => {
    for (const percent of [10, 50, 0.5]) {
      const f = fault({ percent, seed: 3 });
      const n = 20_000;
      let applied = 0;
      for (let i = 0; i < n; i++) if (f.decide()) applied++;
      const p = percent / 100;
      const bound = 3.29 * Math.sqrt(n * p * (1 - p));
      expect(applied, `${percent} %`).to.be.within(n * p - bound, n * p + bound);
      expect(f.counter).to.deep.equal({ matched: n, applied });
    }
  });

  it('are a function of (seed, id, ordinal) alone', () => {
    const picks = (seed: number, id = 'f') => {
      const f = new ActiveFault(FaultSpec.parse({ id, percent: 30, seed, delay: { uniform: { min: '0ms', max: '1s' } } }), 'runtime', undefined);
      return Array.from({ length: 500 }, () => {
        const d = f.decide();
        return d ? f.action!.plan(d.random).delayMs : null;
      });
    };
    expect(picks(42)).to.deep.equal(picks(42));
    expect(picks(42)).to.not.deep.equal(picks(43));
    expect(picks(42, 'f')).to.not.deep.equal(picks(42, 'g'));
    expect(picks(42).filter((x) => x !== null).length).to.be.within(100, 200);
  });

  it('count: only the first N, or every K-th, combined with percent', () => {
    const first = fault({ count: { first: 3 } });
    expect(Array.from({ length: 6 }, () => first.decide()?.ordinal ?? 0)).to.deep.equal([1, 2, 3, 0, 0, 0]);
    const every = fault({ count: { every: 4 } });
    expect(Array.from({ length: 12 }, () => every.decide()?.ordinal ?? 0).filter(Boolean)).to.deep.equal([4, 8, 12]);
    const both = fault({ count: { every: 2 }, percent: 50, seed: 1 });
    const ordinals = Array.from({ length: 2_000 }, () => both.decide()?.ordinal).filter((o) => o !== undefined);
    expect(ordinals.every((o) => o % 2 === 0)).to.equal(true);
    expect(ordinals.length).to.be.within(500 - 3.29 * Math.sqrt(250), 500 + 3.29 * Math.sqrt(250));
  });

  it('a removed or expired fault decides nothing', () => {
    const removed = fault({});
    removed.removed.cancel(undefined);
    expect(removed.decide()).to.equal(undefined);
    const expired = new ActiveFault(FaultSpec.parse({ id: 'e', abort: { status: 503 } }), 'runtime', Date.now() - 1);
    expect(expired.decide()).to.equal(undefined);
  });
});

describe('fault schema', () => {
  const problems = (spec: Record<string, unknown>) => {
    const result = FaultSpec.safeParse({ id: 'x', ...spec });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('wants exactly one action and one distribution', () => {
    expect(problems({})).to.deep.equal([': missing: one action, of delay, abort, partition, bandwidth, slicer, hang, tcp']);
    expect(problems({ hang: {}, abort: { status: 500 } })).to.deep.equal([': one action, not abort and hang']);
    expect(problems({ delay: { before: 'body' } })[0]).to.match(/^delay: missing: one distribution/);
    expect(problems({ delay: { fixed: '1s', uniform: { min: '1ms', max: '2ms' } } })[0]).to.equal('delay: one distribution, not fixed and uniform');
  });

  it('checks values: percent range, durations, regexes, partitions', () => {
    expect(problems({ hang: {}, percent: 101 })[0]).to.match(/^percent: /);
    expect(problems({ delay: { fixed: 'soon' } })[0]).to.match(/^delay\.fixed: expected a duration/);
    expect(problems({ hang: {}, match: { pathRegex: '(' } })[0]).to.match(/^match\.pathRegex: not a valid regular expression/);
    expect(problems({ partition: { from: ['a'], to: ['b'] }, match: { destination: 'b' } })[0]).to.match(/^match: a partition names its services/);
    expect(problems({ hang: {}, ttl: '1m', expiresAt: '2030-01-01T00:00:00Z' })[0]).to.equal('ttl: ttl or expiresAt, not both');
    expect(problems({ hang: {}, ttl: '0s' })).to.deep.equal(['ttl: must be above 0: a lease of 0 would end as it begins']);
  });
});
