// The analysis on a small hand-made recording whose answers can be checked by hand: a front service
// calling api; a fault aborting api's tries for 10 s; ten requests saved by a retry, four that failed
// after retrying, two refused by the retry budget, one refused by a breaker the fault had opened, one
// failure no fault explains, and twelve the fault left alone. Then the reports made from it: JSON, Markdown, JUnit (parsed).
import { expect } from 'chai';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { analyze, readRun } from '../../src/analysis/analyze.ts';
import { mannWhitney, normalCdf, twoProportions } from '../../src/analysis/stats.ts';
import { reportJunit } from '../../src/reports/junit.ts';
import { reportJson, reportMarkdown } from '../../src/reports/text.ts';
import { readJunit } from '../helpers/junit.ts';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();

async function fixture(previousScore?: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'faultline-analysis-'));
  const dir = join(root, 'front-aborts', '2026-11-25T10-00-00-000Z');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'experiment.yaml'), stringify({
    name: 'front-aborts',
    target: { mesh: 'mesh.yaml' },
    load: { entry: 'front', rate: 10 },
    steadyState: [{ availability: { service: 'front', min: 95 } }],
    method: [{ at: '0s', duration: '10s', fault: { id: 'api-errors', match: { destination: 'api' }, at: 'attempt', percent: 50, abort: { status: 503 } } }],
    expect: [{ retriesMask: { service: 'api', min: 40 } }],
  }));
  await writeFile(join(dir, 'journal.json'), JSON.stringify({
    experiment: 'front-aborts', file: 'x', seed: 9, status: 'complete', outcome: 'failed', reason: null,
    startedAt: iso(0), finishedAt: iso(32), target: 'mesh',
    phases: [
      { name: 'baseline', startedAt: iso(0), endedAt: iso(10), outcome: 'steady', notes: [] },
      { name: 'method', startedAt: iso(10), endedAt: iso(20), outcome: 'done', notes: [] },
      { name: 'rollback', startedAt: iso(20), endedAt: iso(21), outcome: 'verified', notes: [] },
      { name: 'recovery', startedAt: iso(21), endedAt: iso(31), outcome: null, notes: [] },
    ],
    faults: [{ id: 'api-errors', step: 0, injectedAt: iso(10), removedAt: iso(20), renewals: 9, spec: {} }],
    halts: [], rollback: { at: iso(20), removed: ['api-errors'], verified: true, remaining: {} }, verdicts: [],
  }));
  const events: Record<string, unknown>[] = [{ type: 'fault.installed', faultId: 'api-errors', time: at(10), sidecar: 'front' }];
  const load: Record<string, unknown>[] = [];
  for (let i = 0; i < 10; i++) load.push({ t: at(i + 0.5), latencyMs: 10, status: 200, cohort: 'all' });
  for (let i = 0; i < 10; i++) load.push({ t: at(21.5 + i), latencyMs: 10, status: 200, cohort: 'all' });
  // The method: 30 requests, one every third of a second.
  const kinds = [...Array(10).fill('saved'), ...Array(4).fill('urx'), 'ubx', 'ubx', 'breaker', 'mystery', ...Array(12).fill('clean')] as string[];
  kinds.forEach((kind, i) => {
    const t = at(10.2 + i / 3);
    const requestId = `r${i + 1}`;
    const failed = kind !== 'saved' && kind !== 'clean';
    load.push({ t, latencyMs: 20, status: failed ? 502 : 200, cohort: 'all' });
    events.push({ type: 'request.done', time: t, sidecar: 'front', direction: 'inbound', requestId, traceId: null, source: 'load', service: null, status: failed ? 502 : 200, flags: [], attempts: 0, durationMs: 20, faults: [] });
    const aborts = kind === 'saved' || kind === 'ubx' ? 1 : kind === 'urx' ? 2 : 0;
    for (let a = 0; a < aborts; a++) events.push({ type: 'fault.applied', time: t - 5, sidecar: 'front', faultId: 'api-errors', action: 'abort', point: 'attempt', destination: 'api', requestId, attempt: a + 1 });
    if (kind === 'mystery') return;
    events.push({
      type: 'request.done', time: t - 1, sidecar: 'front', direction: 'outbound', requestId, traceId: null, source: 'front', service: 'api',
      status: failed ? 503 : 200, attempts: kind === 'saved' || kind === 'urx' ? 2 : 1,
      flags: kind === 'urx' ? ['FI', 'URX'] : kind === 'ubx' ? ['FI', 'UBX'] : kind === 'breaker' ? ['UO'] : [],
      durationMs: 15, faults: aborts > 0 ? Array(aborts).fill('api-errors') : [],
    });
  });
  await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await writeFile(join(dir, 'load.ndjson'), load.map((e) => JSON.stringify(e)).join('\n') + '\n');
  if (previousScore !== undefined) {
    const previous = join(root, 'front-aborts', '2026-11-24T10-00-00-000Z');
    await mkdir(previous, { recursive: true });
    await writeFile(join(previous, 'report.json'), JSON.stringify({
      experiment: { startedAt: at(-86_400), outcome: 'passed' },
      score: { value: previousScore },
      hypotheses: [{ id: 'steadyState[0]@method', outcome: 'pass' }],
      services: [{ service: 'front', window: 'api-errors', availability: 100, latency: { p99: 20 } }],
    }));
  }
  return dir;
}

describe('analysis of a recording with known answers', () => {
  it('windows, availability and verdicts', async () => {
    const a = await analyze(await readRun(await fixture()));
    expect(a.windows.map((w) => [w.name, w.kind, (w.to - w.from) / 1000])).to.deep.equal([['baseline', 'baseline', 10], ['api-errors', 'fault', 10], ['recovery', 'recovery', 10]]);
    const front = (w: string) => a.services.find((s) => s.service === 'front' && s.window === w)!;
    expect([front('baseline').requests, front('baseline').availability]).to.deep.equal([10, 100]);
    expect(front('api-errors').requests).to.equal(30);
    expect(front('api-errors').availability).to.be.closeTo(100 * 22 / 30, 1e-9);
    expect(a.hypotheses.map((h) => [h.id, h.outcome])).to.deep.equal([
      ['steadyState[0]@baseline', 'inconclusive'], // 10 samples: fewer than the 20 a verdict needs
      ['steadyState[0]@method', 'fail'],
      ['steadyState[0]@recovery', 'inconclusive'],
      ['expect[0]', 'pass'],
    ]);
    expect(a.hypotheses[3]!.measured).to.equal('50.0 % (10 of 20)');
  });

  it('attributes each failed request to its fault and to what the policies did', async () => {
    const a = await analyze(await readRun(await fixture()));
    const policies = a.attribution.rows.map((r) => [r.requestId, r.via, r.policy]);
    expect(policies).to.deep.equal([
      ['r11', 'trace', 'retried-and-failed'], ['r12', 'trace', 'retried-and-failed'], ['r13', 'trace', 'retried-and-failed'], ['r14', 'trace', 'retried-and-failed'],
      ['r15', 'trace', 'budget-exhausted'], ['r16', 'trace', 'budget-exhausted'],
      ['r17', 'window', 'breaker-rejected'],
    ]);
    expect(a.attribution.unattributed).to.equal(1);
    expect(a.attribution.totals).to.deep.equal([
      { fault: 'api-errors', policy: 'retried-and-saved', count: 10 },
      { fault: 'api-errors', policy: 'retried-and-failed', count: 4 },
      { fault: 'api-errors', policy: 'budget-exhausted', count: 2 },
    ]);
    expect(a.faults).to.deep.equal([{ id: 'api-errors', action: 'abort', targets: ['api'], injectedAt: at(10), removedAt: at(20), injected: 20, failedAtEdge: 7, factor: 0.35, instances: [] }]);
    expect(a.policies.retries.find((r) => r.service === 'api')).to.include({ injectedAborts: 20, masked: 10, maskingRatio: 50, requests: 29, attempts: 43 });
  });

  it('propagation: errors on front → api counted, and api is where the fault was', async () => {
    const a = await analyze(await readRun(await fixture()));
    expect(a.propagation.edges).to.deep.equal([{ from: 'front', to: 'api', calls: 29, errors: 7, propagated: 0 }]);
    expect(a.propagation.nodes).to.deep.equal([{ service: 'api', faulted: true, errors: 7 }, { service: 'front', faulted: false, errors: 8 }]);
  });

  it('score from its parts, and what got worse since the previous run', async () => {
    const a = await analyze(await readRun(await fixture(90)));
    // availability (weight 3): 0 pass, 2 inconclusive (half), 1 fail → 3; retriesMask (2): pass → 2; of 3×3 + 2.
    expect(a.score.parts).to.deep.equal([
      { kind: 'availability', weight: 3, passed: 0, total: 3, points: 3 },
      { kind: 'retriesMask', weight: 2, passed: 1, total: 1, points: 2 },
    ]);
    expect(a.score.value).to.equal(45.5);
    expect(a.regression!.worse).to.deep.equal([
      'score 45.5 < 90 in the previous run',
      'availability of frontend ≥ 95 % [method]: pass → fail'.replace('frontend', 'front'),
      'availability of front [api-errors] 73.33 % < 100.00 %',
    ]);
  });

  it('writes JSON, Markdown and JUnit that parse and say the same', async () => {
    const a = await analyze(await readRun(await fixture()));
    expect(JSON.parse(reportJson(a)).schema).to.equal('faultline.report/v1');
    const md = reportMarkdown(a);
    expect(md).to.include('# Game day front-aborts: FAILED');
    expect(md).to.include('| FAIL | availability of front ≥ 95 % | method | 73.33 % | ≥ 95 % | 30 |');
    const [suite] = readJunit(reportJunit(a)).suites;
    expect(suite!.attrs).to.include({ name: 'front-aborts', tests: '9', failures: '1', errors: '0', skipped: '2' });
    expect(suite!.cases.map((c) => [c.name, c.result])).to.deep.equal([
      ['run: ended without error', 'pass'],
      ['run: steady state held before any fault', 'pass'],
      ['run: not halted', 'pass'],
      ['run: faults injected', 'pass'],
      ['run: rollback verified', 'pass'],
      ['availability of front ≥ 95 % [baseline]', 'skipped'],
      ['availability of front ≥ 95 % [method]', 'failure'],
      ['availability of front ≥ 95 % [recovery]', 'skipped'],
      ['retries mask ≥ 40 % of aborts on api [method]', 'pass'],
    ]);
    expect(suite!.cases[6]).to.include({ type: 'FL_HYPOTHESIS_FAILED', message: 'measured 73.33 %, objective ≥ 95 %, 30 samples' });
    expect(suite!.properties).to.include({ seed: '9', outcome: 'failed', score: '45.5', faults: 'api-errors' });
  });
});

describe('statistics for cohorts', () => {
  it('normal CDF, two proportions and Mann–Whitney against known values', () => {
    expect(normalCdf(1.96)).to.be.closeTo(0.975, 1e-4);
    expect(normalCdf(-1)).to.be.closeTo(0.1587, 1e-4);
    // 90/100 vs 80/100: z = 1.98, p = 0.048
    const p = twoProportions(90, 100, 80, 100);
    expect(p.z).to.be.closeTo(1.98, 0.01);
    expect(p.pValue).to.be.closeTo(0.048, 0.002);
    // Disjoint samples: U is n1 × n2 or 0; identical ones: p = 1.
    expect(mannWhitney([10, 11, 12, 13, 14, 15, 16, 17], [1, 2, 3, 4, 5, 6, 7, 8]).u).to.equal(64);
    expect(mannWhitney([1, 2, 3, 4, 5, 6, 7, 8], [10, 11, 12, 13, 14, 15, 16, 17]).pValue).to.be.below(0.001);
    expect(mannWhitney([5, 5, 5, 5], [5, 5, 5, 5]).pValue).to.equal(1);
  });
});

describe('attribution across two hops with retries', () => {
  it('ties a failure at the edge to a fault two hops down, and counts it as propagated on the way', async () => {
    const root = await mkdtemp(join(tmpdir(), 'faultline-twohop-'));
    const dir = join(root, 'two-hop', 'run');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'experiment.yaml'), stringify({
      name: 'two-hop',
      target: { mesh: 'mesh.yaml' },
      load: { entry: 'front', rate: 10 },
      method: [{ at: '0s', duration: '10s', fault: { id: 'api-down', match: { destination: 'api' }, at: 'attempt', abort: { status: 503 } } }],
    }));
    await writeFile(join(dir, 'journal.json'), JSON.stringify({
      experiment: 'two-hop', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(20), target: 'mesh',
      phases: [{ name: 'method', startedAt: iso(0), endedAt: iso(10), outcome: 'done', notes: [] }],
      faults: [{ id: 'api-down', step: 0, injectedAt: iso(0), removedAt: iso(10), renewals: 0, spec: {} }], halts: [], rollback: null, verdicts: [],
    }));
    // r1: front → cart (front's sidecar retries once) → api (cart's sidecar retries once, both tries aborted).
    // r2: the same, but cart's second try to api succeeds: saved two hops down, nothing reaches the edge.
    const done = (sidecar: string, direction: string, service: string | null, requestId: string, status: number, attempts: number, flags: string[], faults: string[], t: number) =>
      ({ type: 'request.done', time: at(t), sidecar, direction, requestId, traceId: null, source: direction === 'outbound' ? sidecar : 'x', service, status, attempts, flags, faults, durationMs: 30 });
    const applied = (requestId: string, attempt: number, t: number) => ({ type: 'fault.applied', time: at(t), sidecar: 'cart', faultId: 'api-down', action: 'abort', point: 'attempt', destination: 'api', requestId, attempt });
    const events = [
      applied('r1', 1, 1), applied('r1', 2, 1.01), applied('r1', 1, 1.02), applied('r1', 2, 1.03),
      done('cart', 'outbound', 'api', 'r1', 503, 2, ['FI', 'URX'], ['api-down', 'api-down'], 1.011),
      done('cart', 'outbound', 'api', 'r1', 503, 2, ['FI', 'URX'], ['api-down', 'api-down'], 1.031),
      done('front', 'outbound', 'cart', 'r1', 502, 2, ['URX'], [], 1.04),
      done('front', 'inbound', null, 'r1', 502, 0, [], [], 1.05),
      applied('r2', 1, 2),
      done('cart', 'outbound', 'api', 'r2', 200, 2, [], ['api-down'], 2.01),
      done('front', 'outbound', 'cart', 'r2', 200, 1, [], [], 2.02),
      done('front', 'inbound', null, 'r2', 200, 0, [], [], 2.03),
    ];
    await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await writeFile(join(dir, 'load.ndjson'), [{ t: at(1.05), latencyMs: 50, status: 502, cohort: 'all' }, { t: at(2.03), latencyMs: 40, status: 200, cohort: 'all' }].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const a = await analyze(await readRun(dir));
    expect(a.attribution.rows.map((r) => [r.requestId, r.via, r.faults, r.service, r.policy])).to.deep.equal([['r1', 'trace', ['api-down'], 'api', 'retried-and-failed']]);
    expect(a.attribution.totals).to.deep.equal([
      { fault: 'api-down', policy: 'retried-and-failed', count: 2 },
      { fault: 'api-down', policy: 'retried-and-saved', count: 1 },
    ]);
    expect(a.faults[0]).to.include({ injected: 5, failedAtEdge: 1, factor: 0.2 });
    expect(a.propagation.edges).to.deep.equal([
      { from: 'cart', to: 'api', calls: 3, errors: 2, propagated: 0 },
      { from: 'front', to: 'cart', calls: 2, errors: 1, propagated: 1 },
    ]);
  });
});
