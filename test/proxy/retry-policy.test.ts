// Retry policy pieces on their own: backoff bounds, the budget over its sliding window, and which
// outcomes each retryOn condition retries.
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { parseConfig } from '../../src/config/load.ts';
import { compileSnapshot, type RetryPolicySpec } from '../../src/config/snapshot.ts';
import { ErrorCode, MeshError, ResponseFlag, perTryTimeout, upstreamConnectFailure, upstreamReset, noHealthyUpstream } from '../../src/errors.ts';
import { fullJitter } from '../../src/proxy/backoff.ts';
import { retriable } from '../../src/proxy/retry.ts';
import { RetryBudget } from '../../src/proxy/retry-budget.ts';

function policy(retries: string): RetryPolicySpec {
  const text = `mesh: {name: a}\nservices: [{name: s, endpoints: [{address: "127.0.0.1:1"}]}]\nroutes:\n  - {name: r, destinations: [{service: s}], retries: ${retries}}\n`;
  return compileSnapshot(parseConfig(text), 'a.yaml').routes[0]!.retries!;
}

const response = (status: number) => ({ response: { status, headers: {}, body: null } });

describe('retry policy', () => {
  it('waits a full-jitter backoff: below min(max, base × 2^(n-1)), down to 0', () => {
    const backoff = { baseMs: 25, maxMs: 250 };
    expect(fullJitter(backoff, 1, () => 0)).to.equal(0);
    expect([1, 2, 3, 4, 5, 6].map((n) => fullJitter(backoff, n, () => 0.999999))).to.satisfy((d: number[]) =>
      d.every((v, i) => v < [25, 50, 100, 200, 250, 250][i]! && v > [25, 50, 100, 200, 250, 250][i]! * 0.999));
    // Seeded: the mean's bound is 11 σ wide, but no test should rest on luck at all.
    const random = seedrandom.alea('full-jitter');
    const draws = Array.from({ length: 1_000 }, () => fullJitter(backoff, 3, random));
    expect(Math.min(...draws)).to.be.at.least(0);
    expect(Math.max(...draws)).to.be.below(100);
    expect(draws.reduce((a, b) => a + b, 0) / draws.length).to.be.within(40, 60); // uniform: mean 50
  });

  it('budget: minPerSecond × 10 retries with no traffic, then ratio × requests on top', () => {
    let now = 1_000_000;
    const budget = new RetryBudget(0.2, 1, () => now);
    let granted = 0;
    while (budget.tryRetry()) granted++;
    expect(granted).to.equal(10);
    for (let i = 0; i < 100; i++) budget.recordRequest();
    while (budget.tryRetry()) granted++;
    expect(granted).to.equal(30);
    expect(budget.totals()).to.deep.equal({ requests: 100, retries: 30, remaining: 0 });
    now += 10_000; // the window has slid past all of it
    expect(budget.totals()).to.deep.equal({ requests: 0, retries: 0, remaining: 10 });
  });

  it('budget: slides second by second', () => {
    let now = 5_000_000;
    const budget = new RetryBudget(0.5, 0, () => now);
    for (let i = 0; i < 10; i++) budget.recordRequest();
    now += 5_000;
    for (let i = 0; i < 10; i++) budget.recordRequest();
    expect(budget.totals().remaining).to.equal(10);
    now += 5_000; // the first ten are out of the window
    expect(budget.totals()).to.include({ requests: 10, remaining: 5 });
  });

  it('5xx retries any 5xx and local failures', () => {
    const p = policy('{retryOn: [5xx]}');
    expect([500, 501, 503].map((s) => retriable(p, response(s)))).to.deep.equal(['5xx', '5xx', '5xx']);
    expect(retriable(p, response(404))).to.equal(undefined);
    expect(retriable(p, { error: upstreamConnectFailure('a', new Error('x')) })).to.equal('5xx');
    expect(retriable(p, { error: upstreamReset('a', new Error('x')) })).to.equal('5xx');
    expect(retriable(p, { error: perTryTimeout(10) })).to.equal('5xx');
  });

  it('gateway-error retries 502, 503, 504 only', () => {
    const p = policy('{retryOn: [gateway-error]}');
    expect([500, 502, 503, 504].map((s) => retriable(p, response(s)))).to.deep.equal([undefined, 'gateway-error', 'gateway-error', 'gateway-error']);
  });

  it('reset, connect-failure and retriable-status-codes each retry their own case', () => {
    const p = policy('{retryOn: [reset, connect-failure, retriable-status-codes], retriableStatusCodes: [409]}');
    expect(retriable(p, { error: upstreamReset('a', new Error('x')) })).to.equal('reset');
    expect(retriable(p, { error: upstreamConnectFailure('a', new Error('x')) })).to.equal('connect-failure');
    expect(retriable(p, response(409))).to.equal('retriable-status-codes');
    expect(retriable(p, response(503))).to.equal(undefined);
    expect(retriable(p, { error: perTryTimeout(10) })).to.equal(undefined);
  });

  it('never retries what the mesh decided: no healthy upstream, a route timeout, a caller that left', () => {
    const p = policy('{retryOn: [5xx, gateway-error, reset, connect-failure]}');
    expect(retriable(p, { error: noHealthyUpstream('s', '') })).to.equal(undefined);
    const routeTimeout = new MeshError(ErrorCode.UpstreamTimeout, 504, ResponseFlag.UpstreamRequestTimeout, 'x');
    expect(retriable(p, { error: routeTimeout })).to.equal(undefined);
    expect(retriable(p, { error: new Error('not a mesh error') })).to.equal(undefined);
  });

  it('has the documented defaults', () => {
    const p = policy('{}');
    expect(p.attempts).to.equal(2);
    expect([...p.retryOn]).to.deep.equal(['connect-failure', 'refused-stream', 'retriable-status-codes']);
    expect([...p.retriableStatusCodes]).to.deep.equal([503]);
    expect(p.backoff).to.deep.equal({ baseMs: 25, maxMs: 250 });
    expect(p.budget).to.deep.equal({ ratio: 0.2, minPerSecond: 10 });
    expect(p.bufferLimit).to.equal(65_536);
  });
});
