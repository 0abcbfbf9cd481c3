// Every hypothesis kind, pass and fail (and inconclusive on too few samples), on small recordings.
import { expect } from 'chai';
import { ExperimentSpec } from '../../src/experiments/spec.ts';
import { expectVerdict, steadyStateVerdict, type Recording } from '../../src/experiments/verdicts.ts';
import type { LoadRecord } from '../../src/experiments/load.ts';

const T = 1_800_000_000_000;
const window = { name: 'method', from: T, to: T + 10_000 };

function experiment(extra: Record<string, unknown>) {
  return ExperimentSpec.parse({
    name: 'v',
    target: { mesh: 'm.yaml' },
    load: { entry: 'front', rate: 10 },
    method: [{ at: '0s', duration: '10s', fault: { id: 'f', match: { destination: 'api' }, abort: { status: 503 } } }],
    ...extra,
  });
}

function recording(load: LoadRecord[], events: Record<string, unknown>[] = [], rollbackAt: number | null = T + 10_000): Recording {
  return { entry: 'front', load, events, cohort: false, rollbackAt, faults: [{ id: 'f', injectedAt: T, removedAt: T + 10_000, targets: ['api'] }] };
}

/** `n` responses spread over the window: the first `bad` of them 503, latency `ms`. */
function responses(n: number, bad: number, ms: number, from = T): LoadRecord[] {
  return Array.from({ length: n }, (_, i) => ({ t: from + (i * 10_000) / n, latencyMs: ms, status: i < bad ? 503 : 200, cohort: 'all' as const }));
}

describe('hypothesis verdicts, every kind', () => {
  it('availability, latency and error-budget burn: pass, fail, inconclusive', () => {
    const e = experiment({ steadyState: [{ availability: { service: 'front', min: 99 } }, { latency: { service: 'front', percentile: 99, max: '100ms' } }, { errorBudgetBurn: { service: 'front', slo: 99, max: 2 } }] });
    const outcomes = (load: LoadRecord[]) => e.steadyState.map((h) => steadyStateVerdict(h, recording(load), window).outcome);
    expect(outcomes(responses(100, 0, 50))).to.deep.equal(['pass', 'pass', 'pass']);
    // 5 % errors: availability 95 % fails; burn = 5 / 1 = 5 > 2 fails; latency still fine.
    expect(outcomes(responses(100, 5, 50))).to.deep.equal(['fail', 'pass', 'fail']);
    expect(outcomes(responses(100, 1, 150))).to.deep.equal(['pass', 'fail', 'pass']);
    expect(outcomes(responses(10, 0, 50))).to.deep.equal(['inconclusive', 'inconclusive', 'inconclusive']);
  });

  it('a hypothesis with no sample is inconclusive and says why, never NaN', () => {
    const e = experiment({ steadyState: [{ availability: { service: 'front', min: 99 } }, { latency: { service: 'front', percentile: 99, max: '100ms' } }, { errorBudgetBurn: { service: 'api', slo: 99, max: 2 } }] });
    const verdicts = (load: LoadRecord[]) => e.steadyState.map((h) => steadyStateVerdict(h, recording(load), window)).map((v) => [v.outcome, v.samples, v.measured]);
    expect(verdicts([])).to.deep.equal([
      ['inconclusive', 0, 'no request reached front: the load recorded no response and no error in this window (it could not connect, or its connections were refused: a listener that takes only mTLS refuses plaintext)'],
      ['inconclusive', 0, 'no request reached front: the load recorded no response and no error in this window (it could not connect, or its connections were refused: a listener that takes only mTLS refuses plaintext)'],
      ['inconclusive', 0, "no request to api in this window: no caller's sidecar recorded one"],
    ]);
    // Requests that all failed without a response: availability is 0 %, latency has nothing to measure.
    const failed = responses(30, 0, 0).map((r) => ({ ...r, status: 0 }));
    expect(verdicts(failed).slice(0, 2)).to.deep.equal([
      ['fail', 30, '0.00 %'],
      ['inconclusive', 0, 'no response from front: all 30 requests in this window failed without one'],
    ]);
  });

  it('retriesMask: pass and fail by the share of aborted tries whose request succeeded', () => {
    const e = experiment({ expect: [{ retriesMask: { service: 'api', min: 80 } }] });
    const events = (saved: number, lost: number) => Array.from({ length: saved + lost }, (_, i) => [
      { type: 'fault.applied', time: T + i, point: 'attempt', destination: 'api', action: 'abort', requestId: `r${i}` },
      { type: 'request.done', time: T + i + 1, direction: 'outbound', service: 'api', requestId: `r${i}`, status: i < saved ? 200 : 503 },
    ]).flat();
    expect(expectVerdict(e.expect[0]!, e, recording([], events(9, 1)), window).outcome).to.equal('pass');
    expect(expectVerdict(e.expect[0]!, e, recording([], events(6, 4)), window).outcome).to.equal('fail');
    expect(expectVerdict(e.expect[0]!, e, recording([], events(2, 0)), window).outcome).to.equal('inconclusive');
  });

  it('retriesMask judges each abort by the call it hit, not by another call of the same request', () => {
    const e = experiment({ expect: [{ retriesMask: { service: 'api', min: 80 } }] });
    // Every request: the abort on cart's call to api was masked (200), then cart's call to stock (same
    // request id, same sidecar) failed; and front's own call to api of the same request succeeded.
    const events = Array.from({ length: 10 }, (_, i) => [
      { type: 'fault.applied', time: T + i, sidecar: 'cart', point: 'attempt', destination: 'api', action: 'abort', faultId: 'api-aborts', requestId: `r${i}` },
      { type: 'request.done', time: T + i + 1, sidecar: 'cart', direction: 'outbound', service: 'api', requestId: `r${i}`, status: 200, faults: ['api-aborts'] },
      { type: 'request.done', time: T + i + 2, sidecar: 'cart', direction: 'outbound', service: 'stock', requestId: `r${i}`, status: 503, faults: [] },
      { type: 'request.done', time: T + i + 3, sidecar: 'front', direction: 'outbound', service: 'api', requestId: `r${i}`, status: 503, faults: [] },
    ]).flat();
    const verdict = expectVerdict(e.expect[0]!, e, recording([], events), window);
    expect(verdict).to.include({ outcome: 'pass', measured: '100.0 % (10 of 10)' });
    // Where the request called api twice from cart, the call the fault went into is the one judged.
    const twice = events.flatMap((ev) => (ev.service === 'api' && ev.sidecar === 'cart' ? [{ ...ev, status: 503, faults: [], time: ev.time - 0.5 }, ev] : [ev]));
    expect(expectVerdict(e.expect[0]!, e, recording([], twice), window)).to.include({ outcome: 'pass', measured: '100.0 % (10 of 10)' });
  });

  it('breaker: opens and closes within their times, or not', () => {
    const e = experiment({ expect: [{ breaker: { service: 'api', opensWithin: '2s', closesWithin: '3s' } }] });
    const transitions = (openAfter: number, closeAfterEnd: number) => [
      { type: 'breaker.state', time: T + openAfter, service: 'api', to: 'open' },
      { type: 'breaker.state', time: T + 10_000 + closeAfterEnd, service: 'api', to: 'closed' },
    ];
    const verdict = (events: Record<string, unknown>[]) => expectVerdict(e.expect[0]!, e, recording([], events), window);
    expect(verdict(transitions(1_500, 2_000)).outcome).to.equal('pass');
    expect(verdict(transitions(2_500, 2_000)).outcome).to.equal('fail');
    expect(verdict(transitions(1_500, 4_000)).outcome).to.equal('fail');
    expect(verdict([]).measured).to.equal('opened never, closed not after it ended');
  });

  it('outlierEjects: an ejection within the time, or none', () => {
    const e = experiment({ expect: [{ outlierEjects: { service: 'api', within: '2s' } }] });
    const ejected = (after: number) => [{ type: 'outlier.ejected', time: T + after, service: 'api', endpoint: '127.0.0.1:1' }];
    expect(expectVerdict(e.expect[0]!, e, recording([], ejected(1_000)), window).outcome).to.equal('pass');
    expect(expectVerdict(e.expect[0]!, e, recording([], ejected(3_000)), window).outcome).to.equal('fail');
    expect(expectVerdict(e.expect[0]!, e, recording([], []), window).outcome).to.equal('fail');
  });

  it('recovers: back to the steady state within the time after rollback, or not', () => {
    const e = experiment({ steadyState: [{ availability: { service: 'front', min: 99 } }], expect: [{ recovers: { service: 'front', within: '3s' } }] });
    const after = T + 10_000;
    // 2 s of failures after rollback, then good: recovered at 2 s.
    const quick = [...responses(50, 50, 10, after).slice(0, 50).map((r, i) => ({ ...r, t: after + i * 40 })), ...responses(100, 0, 10, after + 2_000).map((r, i) => ({ ...r, t: after + 2_000 + i * 40 }))];
    const slow = [...Array.from({ length: 150 }, (_, i) => ({ t: after + i * 40, latencyMs: 10, status: 503, cohort: 'all' as const })), ...Array.from({ length: 50 }, (_, i) => ({ t: after + 6_000 + i * 40, latencyMs: 10, status: 200, cohort: 'all' as const }))];
    expect(expectVerdict(e.expect[0]!, e, recording(quick), window)).to.include({ outcome: 'pass', measured: '2000 ms' });
    expect(expectVerdict(e.expect[0]!, e, recording(slow), window).outcome).to.equal('fail');
  });
});
