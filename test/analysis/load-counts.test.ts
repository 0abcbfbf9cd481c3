// One count everywhere: a recording whose load holds ok and failed requests, one the load cut at its
// stop (its edge request.done is status 0, DC) and a missed start; the summary and the reports count
// them alike, the cut one is no failure "without a fault", and a window's samples are the ones the
// runner judged (the journal's windows), not the wider span of its phase.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { analyze, readRun } from '../../src/analysis/analyze.ts';
import type { Journal } from '../../src/experiments/journal.ts';
import { describeLoad, loadFigures, type LoadRecord, type LoadRun } from '../../src/experiments/load.ts';
import { summarise } from '../../src/experiments/summary.ts';
import { steadyStateVerdict, type Recording } from '../../src/experiments/verdicts.ts';
import { reportMarkdown } from '../../src/reports/text.ts';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();

async function writeRun(dir: string, journal: Journal, events: Record<string, unknown>[], load: LoadRecord[]): Promise<void> {
  await writeFile(join(dir, 'journal.json'), JSON.stringify(journal));
  await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await writeFile(join(dir, 'load.ndjson'), load.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

describe('counts of the load', () => {
  it('are the same in the summary and the reports, with cut requests and missed starts apart from failures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-counts-'));
    const experimentYaml = { name: 'counts', target: { mesh: 'mesh.yaml' }, load: { entry: 'front', rate: 5 }, steadyState: [{ availability: { service: 'front', min: 90 } }], method: [{ at: '0s', duration: '1s', fault: { id: 'f', match: { destination: 'front' }, at: 'inbound', percent: 1, abort: { status: 503 } } }] };
    await writeFile(join(dir, 'experiment.yaml'), stringify(experimentYaml));
    const load: LoadRecord[] = [];
    const events: Record<string, unknown>[] = [];
    // 25 requests in the baseline (10 s of phase; the runner judged 0–9.5 s), the last answered at 9.7 s with a 503.
    for (let i = 0; i < 24; i++) load.push({ t: at(0.1 + i * 0.38), latencyMs: 10, status: 200, cohort: 'all', requestId: `load-a-${i}` });
    load.push({ t: at(9.7), latencyMs: 10, status: 503, cohort: 'all', requestId: 'load-a-24' });
    load.push({ t: at(10.5), latencyMs: 0, status: 0, cohort: 'all', kind: 'missed' });
    // Cut by the load at its stop; the entry's sidecar saw its caller go away.
    load.push({ t: at(12), latencyMs: 3_000, status: 0, cohort: 'all', kind: 'cut', requestId: 'load-a-26' });
    events.push({ type: 'request.done', time: at(12), sidecar: 'front', direction: 'inbound', requestId: 'load-a-26', traceId: null, source: 'load', service: null, status: 0, flags: ['DC'], attempts: 0, durationMs: 3_000, faults: [] });
    const loadRun: LoadRun = { model: 'open', rate: 5, maxInFlight: 50, from: at(0), to: at(11) };
    const windows = [{ name: 'baseline', from: at(0), to: at(9.5) }];
    const recording: Recording = { entry: 'front', load, events, faults: [], rollbackAt: null, cohort: false };
    const verdicts = [steadyStateVerdict({ availability: { service: 'front', min: 90 } }, recording, windows[0]!)];
    const journal: Journal = {
      experiment: 'counts', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(12), target: 'mesh',
      phases: [{ name: 'baseline', startedAt: iso(0), endedAt: iso(10), outcome: 'steady', notes: [] }, { name: 'recovery', startedAt: iso(10), endedAt: iso(12), outcome: null, notes: [] }],
      faults: [{ id: 'f', step: 0, injectedAt: null, removedAt: null, renewals: 0, spec: {} }], halts: [], rollback: null, verdicts, windows, load: loadRun,
    };
    await writeRun(dir, journal, events, load);

    const analysis = await analyze(await readRun(dir));
    const figures = loadFigures(load, loadRun);
    expect(figures).to.deep.include({ sent: 26, ok: 24, failed: 1, cut: 1, missed: 1 });
    expect(analysis.load).to.deep.equal(figures);
    expect(analysis.attribution.unattributed, 'the cut request is no failure without a fault').to.equal(0);
    const baseline = analysis.hypotheses.find((h) => h.id === 'steadyState[0]@baseline')!;
    expect({ samples: baseline.samples, measured: baseline.measured }).to.deep.equal({ samples: verdicts[0]!.samples, measured: verdicts[0]!.measured });
    expect(baseline.samples).to.equal(24);
    const line = describeLoad(figures);
    expect(line).to.equal('open-model load at 5/s (achieved 2.36/s, at most 50 in flight): 26 sent, 24 ok, 1 failed, 1 cut by the load\'s stop, 1 missed starts');
    expect(summarise(journal, dir, recording)).to.include(line);
    expect(reportMarkdown(analysis)).to.include(line);
  });

  it('leave out what the closed model dropped at its stop: DC at the entry after the load ended', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-counts-'));
    await writeFile(join(dir, 'experiment.yaml'), stringify({ name: 'counts', target: { mesh: 'mesh.yaml' }, load: { entry: 'front', rate: 5, model: 'closed' }, method: [{ at: '0s', duration: '1s', fault: { id: 'f', match: { destination: 'front' }, at: 'inbound', percent: 1, abort: { status: 503 } } }] }));
    const done = (s: number, id: string, status: number, flags: string[]) => ({ type: 'request.done', time: at(s), sidecar: 'front', direction: 'inbound', requestId: id, traceId: null, source: 'load', service: null, status, flags, attempts: 0, durationMs: 5, faults: [] });
    // One caller gone mid-run (a failure nobody explains), eight dropped when the load stopped at 10 s.
    const events = [done(5, 'r-1', 0, ['DC']), ...Array.from({ length: 8 }, (_, i) => done(10.01, `r-${i + 2}`, 0, ['DC']))];
    const journal: Journal = {
      experiment: 'counts', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(11), target: 'mesh',
      phases: [{ name: 'baseline', startedAt: iso(0), endedAt: iso(11), outcome: 'steady', notes: [] }],
      faults: [{ id: 'f', step: 0, injectedAt: null, removedAt: null, renewals: 0, spec: {} }], halts: [], rollback: null, verdicts: [], windows: [],
      load: { model: 'closed', rate: 5, maxInFlight: null, from: at(0), to: at(10) },
    };
    await writeRun(dir, journal, events, [{ t: at(1), latencyMs: 5, status: 200, cohort: 'all' }]);
    const analysis = await analyze(await readRun(dir));
    expect(analysis.attribution.unattributed).to.equal(1);
  });
});
