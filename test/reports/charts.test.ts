// The charts' time buckets on the run's own clock, from a recording: a fault injected half a second
// into a wall-clock second, failing and slowing every request from that moment on. Nothing it caused may
// fall into a bucket that began before it, nor be drawn left of the shaded fault window.
import { expect } from 'chai';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { analyze, readRun } from '../../src/analysis/analyze.ts';
import { CHART_WIDTH, ERROR_FILL, FAULT_FILL, renderCharts } from '../../src/reports/charts.ts';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();
const [INJECTED, REMOVED, END] = [10.5, 15.5, 25];

/** The recording: a request every 100 ms, each failed (503 after 400 ms) while the fault acts; retries then too. */
async function recording(): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'faultline-charts-')), 'edge', 'run');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'experiment.yaml'), stringify({
    name: 'edge',
    target: { mesh: 'mesh.yaml' },
    load: { entry: 'front', rate: 10 },
    method: [{ at: '0s', duration: '5s', fault: { id: 'front-down', match: { destination: 'front' }, at: 'inbound', abort: { status: 503 } } }],
  }));
  await writeFile(join(dir, 'journal.json'), JSON.stringify({
    experiment: 'edge', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(END), target: 'mesh',
    phases: [
      { name: 'baseline', startedAt: iso(0), endedAt: iso(INJECTED), outcome: 'steady', notes: [] },
      { name: 'method', startedAt: iso(INJECTED), endedAt: iso(REMOVED), outcome: 'done', notes: [] },
      { name: 'recovery', startedAt: iso(REMOVED), endedAt: iso(END), outcome: null, notes: [] },
    ],
    faults: [{ id: 'front-down', step: 0, injectedAt: iso(INJECTED), removedAt: iso(REMOVED), renewals: 4, spec: {} }],
    halts: [], rollback: { at: iso(REMOVED), removed: ['front-down'], verified: true, remaining: {} }, verdicts: [],
  }));
  const load = Array.from({ length: END * 10 }, (_, k) => {
    const faulted = k / 10 >= INJECTED && k / 10 < REMOVED;
    return { t: at(k / 10), latencyMs: faulted ? 400 : 10, status: faulted ? 503 : 200, cohort: 'all' };
  });
  const retries = load.filter((r) => r.status === 503).map((r) => ({ type: 'retry.attempt', time: r.t, sidecar: 'front', service: 'front' }));
  await writeFile(join(dir, 'load.ndjson'), load.map((r) => JSON.stringify(r)).join('\n') + '\n');
  await writeFile(join(dir, 'events.ndjson'), retries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return dir;
}

/** The x where the fault's shading starts, in the chart's pixels. */
function shadeStart(svg: string): number {
  const shade = new RegExp(`<path d="M([\\d.]+),0h[\\d.]+v[\\d.]+h-[\\d.]+Z" fill="${FAULT_FILL}"`).exec(svg);
  expect(shade, 'a shaded fault window').to.not.equal(null);
  return Number(shade![1]);
}

/** Every vertex of the SVG paths stroked in `color` in the plot (the legend's symbols are translated). */
function vertices(svg: string, color: string): { x: number; y: number }[] {
  const paths = [...svg.matchAll(/<path ([^>]*)>/g)].map((m) => m[1]!).filter((a) => a.includes(`stroke="${color}"`) && !a.includes('transform='));
  expect(paths.length, `paths stroked ${color}`).to.be.above(0);
  return paths.flatMap((a) => [.../([\d.]+),([\d.]+)/g[Symbol.matchAll](/d="([^"]*)"/.exec(a)![1]!)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) })));
}

describe('charts on the run\'s clock', function () {
  this.timeout(30_000);

  it('puts nothing a fault caused in a bucket that began before it', async () => {
    const a = await analyze(await readRun(await recording()));
    const buckets = a.timeseries.filter((b) => b.service === 'front');
    for (const b of buckets) {
      if (b.errors > 0) expect(b.t, `a bucket with errors from +${(b.t - T0) / 1000} s`).to.be.at.least(at(INJECTED));
      // Whole seconds from the injection: no bucket straddles the fault's start or its end.
      for (const edge of [at(INJECTED), at(REMOVED)]) expect(b.t < edge && b.to > edge, `bucket +${(b.t - T0) / 1000}–${(b.to - T0) / 1000} s`).to.equal(false);
    }
    expect(buckets.find((b) => b.t === at(INJECTED))).to.include({ to: at(INJECTED + 1), requests: 10, errors: 10 });
    expect(a.policies.retryTimeline.every((r) => r.t >= at(INJECTED))).to.equal(true);
    // Every request of the run is in one bucket.
    expect(buckets.reduce((n, b) => n + b.requests, 0)).to.equal(END * 10);
  });

  it('draws no error, latency or retry left of the fault window', async () => {
    const a = await analyze(await readRun(await recording()));
    const charts = await renderCharts(a);
    const svg = (id: string) => charts.find((c) => c.id === id)!.svg;
    // The time axis runs to the end of the last bucket: whole seconds from 10.5 s pass 24.9 s at 25.5 s.
    const span = Math.max(END, ...a.timeseries.map((b) => (b.to - T0) / 1000));
    const x = (seconds: number) => (seconds / span) * CHART_WIDTH;

    const errors = svg('errors-front');
    expect(shadeStart(errors)).to.be.closeTo(x(INJECTED), 0.01);
    const bars = [...errors.matchAll(new RegExp(`<path d="M([\\d.]+),([\\d.]+)h([\\d.]+)v([\\d.]+)h-[\\d.]+Z" fill="${ERROR_FILL}"`, 'g'))].map((m) => ({ x: Number(m[1]), width: Number(m[3]), height: Number(m[4]) }));
    const raised = bars.filter((b) => b.height > 0.01);
    expect(raised.length, 'bars above zero').to.equal(REMOVED - INJECTED);
    for (const b of raised) expect(b.x, 'an error bar').to.be.at.least(x(INJECTED) - 0.01);
    expect(Math.min(...raised.map((b) => b.x))).to.be.closeTo(x(INJECTED), 0.01);

    // p99 is 10 ms before the fault and 400 ms during it: every vertex above the lowest level is inside.
    const p99 = vertices(svg('latency-front'), '#762a83');
    const low = Math.max(...p99.map((v) => v.y));
    for (const v of p99.filter((p) => p.y < low - 1)) expect(v.x, 'a raised p99 vertex').to.be.at.least(x(INJECTED) - 0.01);

    const retries = vertices(svg('retries'), '#4c78a8');
    for (const v of retries) expect(v.x, 'a retry vertex').to.be.at.least(x(INJECTED) - 0.01);
  });
});
