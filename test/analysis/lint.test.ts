// The lint findings a game day confirms, on hand-made recordings of a → b → c whose mesh file (kept with
// the run as mesh.yaml) has a timeout inversion: a's route to b times out at 400 ms, b's to c at 2 s.
// The game day lint suggests for it slows c for b by 1.2 s. Confirmed when the run's failures surfaced
// where the finding said (a → b, the route timeout) and the hypothesis it named failed; not confirmed
// when that fault was injected and b held; not exercised when the run injected some other fault.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { analyze, readRun } from '../../src/analysis/analyze.ts';
import { confirmation } from '../../src/analysis/lint.ts';
import { parseConfig } from '../../src/config/load.ts';
import { parseExperiment } from '../../src/experiments/spec.ts';
import { lint } from '../../src/lint/lint.ts';
import { buildModel } from '../../src/lint/model.ts';
import type { Analysis } from '../../src/analysis/types.ts';
import { renderHtml } from '../../src/reports/html.ts';
import { reportMarkdown } from '../../src/reports/text.ts';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const iso = (s: number) => new Date(at(s)).toISOString();

const MESH = {
  mesh: { name: 'chain' },
  services: [
    { name: 'a', endpoints: [{ address: '127.0.0.1:1001' }], calls: ['b'] },
    { name: 'b', endpoints: [{ address: '127.0.0.1:1002' }], calls: ['c'] },
    { name: 'c', endpoints: [{ address: '127.0.0.1:1003' }] },
  ],
  routes: [
    { name: 'a-to-b', match: { host: 'b' }, destinations: [{ service: 'b' }], timeout: '400ms' },
    { name: 'b-to-c', match: { host: 'c' }, destinations: [{ service: 'c' }], timeout: '2s' },
  ],
};

const PREDICTED = { id: 'lint-timeout-inversion', seed: 1, match: { source: 'b', destination: 'c' }, at: 'inbound', delay: { fixed: '1.2s' } };

/**
 * A run of 3 s baseline, 4 s fault, 3 s recovery, 25 requests in each of the first two. `fault`: the
 * method's; `outcome`: what became of the requests under it — a's route timeout cut its calls to b
 * (the inversion), or b answered in time (nothing happened).
 */
async function run(fault: Record<string, unknown>, outcome: 'a-b-timed-out' | 'held'): Promise<Analysis> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-lint-confirm-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(MESH));
  await writeFile(join(dir, 'experiment.yaml'), stringify({
    name: 'lint-timeout-inversion-a-b-c',
    target: { mesh: 'mesh.yaml' },
    load: { entry: 'a', rate: 20 },
    steadyState: [{ availability: { service: 'b', min: 99 } }],
    method: [{ at: '0s', duration: '4s', fault }],
  }));
  const id = String(fault.id);
  const failed = outcome === 'a-b-timed-out';
  await writeFile(join(dir, 'journal.json'), JSON.stringify({
    experiment: 'lint-timeout-inversion-a-b-c', file: 'x', seed: 1, status: 'complete', outcome: failed ? 'failed' : 'passed', reason: null,
    startedAt: iso(0), finishedAt: iso(10), target: 'mesh',
    phases: [
      { name: 'baseline', startedAt: iso(0), endedAt: iso(3), outcome: 'steady', notes: [] },
      { name: 'method', startedAt: iso(3), endedAt: iso(7), outcome: 'done', notes: [] },
      { name: 'rollback', startedAt: iso(7), endedAt: iso(7), outcome: 'verified', notes: [] },
      { name: 'recovery', startedAt: iso(7), endedAt: iso(10), outcome: null, notes: [] },
    ],
    faults: [{ id, step: 0, injectedAt: iso(3), removedAt: iso(7), renewals: 1, spec: {} }],
    halts: [], rollback: { at: iso(7), removed: [id], verified: true, remaining: {} }, verdicts: [],
  }));
  const events: Record<string, unknown>[] = [{ type: 'fault.installed', faultId: id, time: at(3), sidecar: 'c' }];
  const done = (fields: Record<string, unknown>) => events.push({ type: 'request.done', traceId: null, attempts: 1, flags: [], faults: [], route: null, method: 'GET', ...fields });
  for (let i = 0; i < 50; i++) {
    const faulted = i >= 25;
    const t = faulted ? at(4.5 + (i - 25) / 10) : at(0.2 + i / 10);
    const requestId = `r${i}`;
    const cut = faulted && failed;
    if (faulted) events.push({ type: 'fault.applied', time: t - 0.2, sidecar: 'c', faultId: id, action: 'delay', point: 'inbound', source: 'b', destination: 'c', requestId });
    done({ time: t, sidecar: 'b', direction: 'outbound', requestId, source: 'b', service: 'c', route: 'b-to-c', status: 200, durationMs: faulted ? 1210 : 5, faults: faulted ? [id] : [] });
    done({ time: t - (cut ? 800 : 0), sidecar: 'a', direction: 'outbound', requestId, source: 'a', service: 'b', route: 'a-to-b', status: cut ? 504 : 200, flags: cut ? ['UT'] : [], durationMs: cut ? 401 : faulted ? 1215 : 8 });
    done({ time: t - (cut ? 799 : 0), sidecar: 'a', direction: 'inbound', requestId, source: 'load', service: null, status: cut ? 502 : 200, durationMs: cut ? 403 : faulted ? 1218 : 10 });
  }
  await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return analyze(await readRun(dir));
}

describe('the lint findings a game day confirms', () => {
  it('confirmed: failures at a → b where the route timeout acted, from the predicted fault, and b\'s availability failed', async () => {
    const analysis = await run(PREDICTED, 'a-b-timed-out');
    expect(analysis.lint?.error).to.equal(null);
    const [finding, ...others] = analysis.lint!.findings;
    expect(others).to.deep.equal([]);
    expect(finding).to.deep.include({ rule: 'timeout-inversion', severity: 'error', service: 'a', route: 'a-to-b', status: 'confirmed', failures: 25, elsewhere: 0, faults: ['lint-timeout-inversion'], failedHypotheses: ['steadyState[0]@method'] });
    expect(finding!.path).to.deep.equal(['a', 'b', 'c']);
    expect(finding!.at).to.deep.include({ field: 'routes[0].timeout' });
    expect(finding!.predicted).to.deep.include({ hop: 'a → b', hypothesis: 'availability of b ≥ 99' });
    expect(finding!.predicted.acted).to.include('route-timeout');
    expect(finding!.why).to.match(/^25 failed requests at the edge surfaced at a → b/);

    const markdown = reportMarkdown(analysis);
    expect(markdown).to.include('## Lint findings this run confirms');
    expect(markdown).to.include('1 of 1 finding of `faultline lint` on the run\'s mesh file confirmed by this run.');
    expect(markdown).to.match(/\| CONFIRMED \| timeout-inversion \(error\): a gives up on b after 400ms .*\| a → b → c \| line \d+ routes\[0\]\.timeout \| a → b, route-timeout/);
    const html = await renderHtml(analysis);
    expect(html).to.include('<section id="lint">');
    expect(html).to.match(/<table id="lint-findings">[\s\S]*badge fail">confirmed</);
  });

  it('not confirmed: the predicted fault was injected and b held (not refuted: the run is what it is)', async () => {
    const analysis = await run(PREDICTED, 'held');
    const [finding] = analysis.lint!.findings;
    expect(finding).to.deep.include({ rule: 'timeout-inversion', status: 'not-confirmed', failures: 0, faults: ['lint-timeout-inversion'], failedHypotheses: [] });
    expect(finding!.why).to.match(/put it to the test and no failure surfaced at a → b .*not confirmed by this run .*not refuted/);
    expect(reportMarkdown(analysis)).to.include('0 of 1 finding of `faultline lint`');
  });

  it('not exercised: another fault (c aborting for everyone) says nothing of the inversion', async () => {
    const analysis = await run({ id: 'c-errors', match: { destination: 'c' }, at: 'inbound', abort: { status: 503 } }, 'held');
    const [finding] = analysis.lint!.findings;
    expect(finding).to.deep.include({ status: 'not-exercised', failures: 0, faults: [] });
    expect(finding!.why).to.include('no fault like the predicted one (delay on c at inbound for b) was injected');
  });

  it('a fault on every source, longer than predicted, still puts it to the test; one at another point does not', async () => {
    const wider = await run({ ...PREDICTED, match: { destination: 'c' }, delay: { fixed: '1.5s' } }, 'a-b-timed-out');
    expect(wider.lint!.findings[0]).to.deep.include({ status: 'confirmed', failures: 25 });
    const elsewhere = await run({ ...PREDICTED, at: 'attempt' }, 'a-b-timed-out');
    expect(elsewhere.lint!.findings[0]).to.deep.include({ status: 'not-exercised' });
  });

  it('a halted run confirms it when the failures are the predicted ones: its halt condition is the hypothesis that failed', () => {
    const text = stringify(MESH);
    const [finding] = lint(buildModel(parseConfig(text, 'mesh.yaml'), text, 'mesh.yaml')).findings.filter((f) => f.rule === 'timeout-inversion');
    const experiment = parseExperiment(stringify({ name: 'x', target: { mesh: 'mesh.yaml' }, load: { entry: 'a', rate: 20 }, method: [{ at: '0s', duration: '4s', fault: PREDICTED }] }), 'x.yaml');
    const inputs = {
      experiment,
      windows: [{ name: PREDICTED.id, kind: 'fault' as const, from: at(3), to: at(7) }],
      attribution: { rows: [], totals: [], unattributed: 0, causes: [{ faults: [PREDICTED.id], hop: 'a → b', sidecar: 'a', acted: 'route-timeout' as const, retry: 'no-time-left' as const, failures: 9 }] },
      hypotheses: [],
    };
    expect(confirmation(finding as Parameters<typeof confirmation>[0], inputs)).to.deep.include({ status: 'not-confirmed', failures: 9 });
    const halted = confirmation(finding as Parameters<typeof confirmation>[0], { ...inputs, halts: ['availability of b 10.0 % < 50 % for 2000 ms'] });
    expect(halted).to.deep.include({ status: 'confirmed', failures: 9, failedHypotheses: ['halted: availability of b 10.0 % < 50 % for 2000 ms'] });
  });

  it('a run without its mesh file has no lint section', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-lint-confirm-'));
    await writeFile(join(dir, 'experiment.yaml'), stringify({ name: 'x', target: { mesh: 'mesh.yaml' }, load: { entry: 'a', rate: 1 }, method: [{ at: '0s', duration: '1s', fault: PREDICTED }] }));
    await writeFile(join(dir, 'journal.json'), JSON.stringify({ experiment: 'x', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(1), target: 'mesh', phases: [], faults: [], halts: [], rollback: null, verdicts: [] }));
    const analysis = await analyze(await readRun(dir));
    expect(analysis).not.to.have.property('lint');
    expect(reportMarkdown(analysis)).not.to.include('Lint findings');
  });
});
