// A small hand-made but realistic analysis for the report tests: frontend → cart → payments, 30 s of
// one-second buckets, payments aborted by one fault from 10 s until a halt at 18 s (when frontend's
// availability fell below its objective), five hypotheses (pass, fail, inconclusive), the breaker on
// payments going closed → open → half-open → closed, a cohort comparison, and strings made to test
// escaping: the fault id holds `<b>` and the halt reason a `<script>`.
import type { Analysis, AttributedHop, AttributionRow, Bucket, Policy } from '../../src/analysis/types.ts';

export const T0 = Date.parse('2026-11-25T10:00:00.000Z');
export const FAULT_ID = 'payments-<b>abort</b>';
export const HALT_REASON = 'frontend availability 91.2 % < 95 % <script>alert(1)</script>';
const at = (s: number) => T0 + s * 1000;
const FAULT_FROM = 10;
const HALT_AT = 18;

/** Deterministic per-second figures: a little jitter, worse while the fault acts, slowly better after. */
function buckets(): Bucket[] {
  const out: Bucket[] = [];
  const shape = { frontend: { base: 24, tail: 90, rps: 50, hit: 0.09 }, cart: { base: 12, tail: 45, rps: 60, hit: 0.14 }, payments: { base: 8, tail: 30, rps: 70, hit: 0.3 } };
  for (const [service, s] of Object.entries(shape)) {
    for (let i = 0; i < 30; i++) {
      const jitter = ((i * 7 + service.length * 13) % 11) / 10;
      const during = i >= FAULT_FROM && i < HALT_AT;
      const after = i >= HALT_AT ? Math.max(0, 1 - (i - HALT_AT) / 4) : 0;
      const requests = s.rps + ((i * 3) % 5);
      const errors = during ? Math.round(requests * s.hit * (0.8 + jitter / 5)) : after > 0 ? Math.round(requests * s.hit * after * 0.3) : i % 9 === 4 ? 1 : 0;
      const slow = during ? 2.5 : 1 + after * 0.8;
      out.push({ service, t: at(i), to: at(i + 1), requests, errors, p50: Math.round(s.base * slow * (1 + jitter / 10) * 10) / 10, p99: Math.round(s.tail * slow * (1 + jitter / 4) * 10) / 10 });
    }
  }
  return out;
}

function attributionRows(): AttributionRow[] {
  const policies: Policy[] = ['retried-and-saved', 'retried-and-failed', 'budget-exhausted', 'breaker-rejected', 'timed-out', 'not-retried'];
  return Array.from({ length: 12 }, (_, i) => ({
    requestId: `req-${String(i + 1).padStart(4, '0')}`,
    traceId: i % 4 === 3 ? null : `trace-${(i * 2654435761) % 100000}`,
    at: at(FAULT_FROM) + i * 600,
    service: i % 3 === 0 ? 'cart' : 'payments',
    status: policies[i % policies.length] === 'retried-and-saved' ? 200 : i % 5 === 4 ? 504 : 503,
    grpcStatus: null,
    latencyMs: 40 + i * 17,
    flags: i % 2 ? ['retry'] : [],
    faults: [FAULT_ID],
    via: policies[i % policies.length] === 'breaker-rejected' ? 'window' : 'trace',
    policy: policies[i % policies.length]!,
    faultHop: 'cart → payments',
    surfaced: surfacedHop,
    path: [surfacedHop],
    explanation: `${FAULT_ID} (abort) on cart → payments; surfaced at cart → payments (sidecar cart) as 503 FI URX: 3 tries all failed: the retries were used up; retries: 3 tries of 3 allowed, all failed`,
  }));
}

const surfacedHop: AttributedHop = {
  hop: 'cart → payments', sidecar: 'cart', direction: 'outbound', route: 'payments', status: 503, grpcStatus: null, flags: ['FI', 'URX'], attempts: 3, latencyMs: 31,
  acted: 'retry-limit', how: '3 tries all failed: the retries were used up', retry: { verdict: 'limit-reached', why: '3 tries of 3 allowed, all failed' },
};

export function fixtureAnalysis(): Analysis {
  const latency = (p50: number, p99: number) => ({ p50, p90: Math.round((p50 + p99) / 2), p99, max: p99 * 1.4 });
  return {
    schema: 'faultline.report/v1',
    experiment: {
      name: 'payments-aborts',
      description: 'Half of the calls to payments are aborted with 503; the cart retries and its breaker should contain it.',
      seed: 424242,
      outcome: 'halted',
      reason: HALT_REASON,
      startedAt: T0,
      finishedAt: at(30),
      complete: true,
      rollback: { verified: true, remaining: {} },
    },
    windows: [
      { name: 'baseline', kind: 'baseline', from: at(0), to: at(FAULT_FROM) },
      { name: FAULT_ID, kind: 'fault', from: at(FAULT_FROM), to: at(HALT_AT) },
      { name: 'recovery', kind: 'recovery', from: at(HALT_AT), to: at(30) },
    ],
    services: ['frontend', 'cart', 'payments'].flatMap((service, k) =>
      ['baseline', FAULT_ID, 'recovery'].map((window, w) => ({
        service,
        window,
        requests: [500, 400, 600][w]! + k * 100,
        rps: 50 + k * 10,
        availability: w === 1 ? [91.2, 86.5, 70.1][k]! : 99.8,
        latency: w === 1 ? latency(30 + k * 5, 220 + k * 10) : latency(12 + k * 4, 80 + k * 6),
        burn: service === 'frontend' ? [{ slo: 99, rate: w === 1 ? 8.8 : 0.2 }] : [],
      })),
    ),
    timeseries: buckets(),
    faults: [{ id: FAULT_ID, action: 'abort', targets: ['payments'], injectedAt: at(FAULT_FROM), removedAt: at(HALT_AT), injected: 164, failedAtEdge: 37, factor: 37 / 164, instances: [{ endpoint: '127.0.0.1:9103', count: 120 }, { endpoint: '127.0.0.1:9101', count: 44 }] }],
    halts: [{ at: at(HALT_AT), reason: HALT_REASON }],
    hypotheses: [
      { id: 'h1', kind: 'availability', hypothesis: 'frontend availability ≥ 95 %', window: 'baseline', outcome: 'pass', measured: '99.8 %', objective: '≥ 95 %', samples: 500 },
      { id: 'h2', kind: 'availability', hypothesis: 'frontend availability ≥ 95 %', window: FAULT_ID, outcome: 'fail', measured: '91.2 %', objective: '≥ 95 %', samples: 400 },
      { id: 'h3', kind: 'retriesMask', hypothesis: 'retries on cart mask ≥ 40 % of injected aborts', window: FAULT_ID, outcome: 'pass', measured: '62.3 %', objective: '≥ 40 %', samples: 164 },
      { id: 'h4', kind: 'breaker', hypothesis: 'the breaker on payments opens within 5 s', window: FAULT_ID, outcome: 'fail', measured: 'opened after 2.0 s, stayed open 10 s', objective: '≤ 5 s & closes ≤ 5 s after rollback', samples: 1 },
      { id: 'h5', kind: 'recovers', hypothesis: 'payments p99 back below 50 ms within 10 s', window: 'recovery', outcome: 'inconclusive', measured: 'not enough samples', objective: '≤ 10 s', samples: 3 },
    ],
    attribution: {
      rows: attributionRows(),
      totals: [
        { fault: FAULT_ID, policy: 'retried-and-saved', count: 102 },
        { fault: FAULT_ID, policy: 'retried-and-failed', count: 21 },
        { fault: FAULT_ID, policy: 'budget-exhausted', count: 9 },
        { fault: FAULT_ID, policy: 'breaker-rejected', count: 7 },
      ],
      causes: [{ faults: [FAULT_ID], hop: 'cart → payments', sidecar: 'cart', acted: 'retry-limit', retry: 'limit-reached', failures: 10 }],
      unattributed: 3,
    },
    policies: {
      retries: [{ service: 'cart', injectedAborts: 164, masked: 102, maskingRatio: 102 / 164, attempts: 412, requests: 310, amplification: 412 / 310 }],
      breakers: [{ service: 'payments', opensAfterMs: 2000, closesAfterMs: 6000 }],
      ejections: [{
        service: 'payments',
        endpoint: '127.0.0.1:9103',
        sidecar: 'cart',
        ejectedAt: at(13),
        restoredAt: at(23),
        detector: 'latency',
        reason: "p90 412 ms over 38 tries > 3 × the siblings' median p90 4.1 ms (and > minimum 50 ms)",
        figures: { percentile: 90, latencyMs: 412, siblingsMedianMs: 4.1, factor: 3, minimumMs: 50, requests: 38, hostsJudged: 3 },
      }],
      recovery: [
        { service: 'frontend', afterMs: 2100 },
        { service: 'cart', afterMs: 3400 },
        { service: 'payments', afterMs: null },
      ],
      retryTimeline: [
        ...Array.from({ length: 10 }, (_, i) => ({ service: 'cart', t: at(FAULT_FROM + i), to: at(FAULT_FROM + i + 1), retries: i < 8 ? 18 + ((i * 5) % 7) : 2 })),
        ...Array.from({ length: 6 }, (_, i) => ({ service: 'frontend', t: at(FAULT_FROM + 1 + i), to: at(FAULT_FROM + 2 + i), retries: 3 + (i % 3) })),
      ],
      breakerTimeline: [
        { service: 'payments', t: at(0), state: 'closed' },
        { service: 'payments', t: at(12), state: 'open' },
        { service: 'payments', t: at(22), state: 'half-open' },
        { service: 'payments', t: at(24), state: 'closed' },
        { service: 'cart', t: at(0), state: 'closed' },
      ],
    },
    propagation: {
      nodes: [
        { service: 'frontend', faulted: false, errors: 37 },
        { service: 'cart', faulted: false, errors: 58 },
        { service: 'payments', faulted: true, errors: 164 },
      ],
      edges: [
        { from: 'frontend', to: 'cart', calls: 400, errors: 37, propagated: 33 },
        { from: 'cart', to: 'payments', calls: 412, errors: 164, propagated: 0 },
      ],
    },
    score: {
      value: 50,
      reason: null,
      parts: [
        { kind: 'availability', weight: 3, passed: 1, total: 2, points: 3 },
        { kind: 'retriesMask', weight: 2, passed: 1, total: 1, points: 2 },
        { kind: 'breaker', weight: 2, passed: 0, total: 1, points: 0 },
        { kind: 'recovers', weight: 2, passed: 0, total: 1, points: 1 },
      ],
    },
    regression: {
      previous: [{ dir: 'runs/payments-aborts/2026-11-24T10-00-00-000Z', startedAt: T0 - 86_400_000, outcome: 'passed', score: 80 }],
      worse: ['score 80 → 50', 'frontend availability during the fault 97.9 % → 91.2 %'],
    },
    cohorts: {
      service: 'frontend',
      experiment: { requests: 210, availability: 88.1, p99: 240 },
      control: { requests: 190, availability: 99.5, p99: 92 },
      availabilityTest: { z: -4.41, pValue: 0.00001, significant: true },
      latencyTest: { u: 12840, pValue: 0.0003, significant: true },
    },
    load: { model: 'open', rate: 50, achieved: 48.7, sent: 1461, maxInFlight: 500, sendLagP99: 3, ok: 1380, failed: 79, cut: 2, missed: 39 },
  };
}
