// The machine- and people-readable reports besides the HTML and JUnit: report.json (the analysis as
// is) and report.md (the summary for a pull request or a wiki), and the lines every report shares.
import { causeOf } from '../analysis/attribution.ts';
import type { Analysis, AttributionRow, Score } from '../analysis/types.ts';
import { describeLoad } from '../experiments/load.ts';
import { callSucceeded, succeeded } from '../measures.ts';

export function reportJson(analysis: Analysis): string {
  return `${JSON.stringify(analysis, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

const fixed = (n: number | null | undefined, digits = 1) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));

export function reportMarkdown(analysis: Analysis): string {
  const e = analysis.experiment;
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `# Game day ${e.name}: ${(e.outcome ?? 'incomplete').toUpperCase()}`,
    '',
    e.description ? `${e.description}\n` : '',
    `Seed ${e.seed}; ${new Date(e.startedAt).toISOString()}${e.finishedAt ? ` – ${new Date(e.finishedAt).toISOString()}` : ' (incomplete)'}${e.reason ? `; ${e.reason}` : ''}.`,
    '',
    `Load: ${analysis.load ? describeLoad(analysis.load) : 'none sent'}.`,
    '',
    analysis.score.value === null
      ? `**No resilience score**: ${analysis.score.reason ?? 'none computed'}.`
      : `**Resilience score ${analysis.score.value} / 100** — ${analysis.score.parts.map((p) => `${p.kind}: ${p.passed}/${p.total} passed × ${p.weight}`).join('; ') || 'no hypotheses'}.`,
    '',
    `Rollback: ${e.rollback ? (e.rollback.verified ? 'verified' : `**NOT verified** (${remainingText(e.rollback.remaining)})`) : 'none recorded'}.`,
    '',
    '## Hypotheses',
    '',
    '| outcome | hypothesis | window | measured | objective | samples |',
    '|---|---|---|---|---|---:|',
    ...analysis.hypotheses.map((h) => `| ${h.outcome.toUpperCase()} | ${cell(h.hypothesis)} | ${h.window} | ${cell(h.measured)} | ${cell(h.objective)} | ${h.samples} |`),
    '',
    '## Faults',
    '',
    '| fault | action | targets | injected | failed at the edge | factor | instances hit |',
    '|---|---|---|---:|---:|---:|---|',
    ...analysis.faults.map((f) => `| ${cell(f.id)} | ${f.action} | ${f.targets.join(', ')} | ${f.injected} | ${f.failedAtEdge} | ${fixed(f.factor, 3)} | ${f.instances.map((i) => `${i.endpoint} ×${i.count}`).join(', ') || '–'} |`),
    '',
    ...(analysis.policies.ejections.length === 0 ? [] : [
      '## Outlier ejections',
      '',
      '| service | endpoint | by | detector | why |',
      '|---|---|---|---|---|',
      ...analysis.policies.ejections.map((j) => `| ${j.service} | ${j.endpoint} | ${cell(j.sidecar)} | ${j.detector ?? '–'} | ${cell(j.reason)} |`),
      '',
    ]),
    '## Which fault and which policy each failed request comes down to',
    '',
    ...(analysis.attribution.causes.length === 0 ? ['No failed request at the edge came down to a fault.'] : [
      '| faults | surfaced at | sidecar | policy that acted | retry | failures |',
      '|---|---|---|---|---|---:|',
      ...analysis.attribution.causes.map((c) => `| ${cell(c.faults.join(', '))} | ${cell(c.hop)} | ${cell(c.sidecar)} | ${c.acted} | ${c.retry} | ${c.failures} |`),
    ]),
    '',
    ...firstOfEachCause(analysis).map((r) => `- ${cell(r.explanation)}`),
    '',
    '## What the policies did with the calls the faults touched',
    '',
    '| fault | policy | calls |',
    '|---|---|---:|',
    ...analysis.attribution.totals.map((t) => `| ${cell(t.fault)} | ${t.policy} | ${t.count} |`),
    '',
    `Failed requests at the edge with a fault on their trace: ${analysis.attribution.rows.filter((r) => !callSucceeded(r)).length}; without one: ${analysis.attribution.unattributed}.`,
    '',
    ...lintMarkdown(analysis, cell),
  ];
  if (analysis.halts.length) lines.push('## Halts', '', ...analysis.halts.map((h) => `- ${new Date(h.at).toISOString()}: ${h.reason}`), '');
  const c = analysis.cohorts;
  if (c) {
    lines.push(
      '## Experiment cohort against the control group',
      '',
      `| group | requests | availability | p99 ms |`,
      '|---|---:|---:|---:|',
      `| experiment | ${c.experiment.requests} | ${fixed(c.experiment.availability, 2)} % | ${fixed(c.experiment.p99)} |`,
      `| control | ${c.control.requests} | ${fixed(c.control.availability, 2)} % | ${fixed(c.control.p99)} |`,
      '',
      `Availability differs: z = ${fixed(c.availabilityTest.z, 2)}, p = ${fixed(c.availabilityTest.pValue, 4)} (${c.availabilityTest.significant ? 'significant' : 'not significant'} at 5 %). ` +
        `Latency differs: Mann–Whitney U = ${fixed(c.latencyTest.u, 0)}, p = ${fixed(c.latencyTest.pValue, 4)} (${c.latencyTest.significant ? 'significant' : 'not significant'} at 5 %).`,
      '',
    );
  }
  const prom = analysis.prometheus;
  if (prom) {
    lines.push(
      `## The same windows from PromQL (${prom.url})`,
      '',
      '| service | window | requests | availability | p99 ms |',
      '|---|---|---:|---:|---:|',
      ...prom.figures.map((f) => `| ${f.service} | ${cell(f.window)} | ${fixed(f.requests, 0)} | ${fixed(f.availability, 2)} % | ${fixed(f.p99)} |`),
      '',
    );
  }
  const r = analysis.regression;
  if (r) lines.push('## Against earlier runs', '', `Previous: ${r.previous.map((p) => `${new Date(p.startedAt).toISOString()} ${p.outcome} score ${p.score ?? 'none'}`).join('; ')}.`, '', r.worse.length ? r.worse.map((w) => `- worse: ${w}`).join('\n') : 'Nothing got worse.', '');
  return `${lines.filter((l, i, all) => !(l === '' && all[i - 1] === '')).join('\n')}\n`;
}

/** The lint findings of the run's mesh that predict a game day, and whether this run confirms each. */
function lintMarkdown(analysis: Analysis, cell: (text: string) => string): string[] {
  const l = analysis.lint;
  if (!l) return [];
  const head = ['## Lint findings this run confirms', ''];
  if (l.error !== null) return [...head, `The run's mesh file could not be linted: ${cell(l.error)}.`, ''];
  const others = l.unpredicted > 0 ? ` (${l.unpredicted} other finding${l.unpredicted === 1 ? '' : 's'} predict${l.unpredicted === 1 ? 's' : ''} no game day)` : '';
  if (l.findings.length === 0) return [...head, `\`faultline lint\` finds nothing in the run's mesh file that a game day could confirm${others}.`, ''];
  const confirmed = l.findings.filter((f) => f.status === 'confirmed').length;
  return [
    ...head,
    `${confirmed} of ${l.findings.length} finding${l.findings.length === 1 ? '' : 's'} of \`faultline lint\` on the run's mesh file confirmed by this run${others}.`,
    '',
    '| status | finding | path | at | predicted | failures there | why |',
    '|---|---|---|---|---|---:|---|',
    ...l.findings.map((f) => `| ${f.status.toUpperCase()} | ${f.rule} (${f.severity}): ${cell(f.message)} | ${cell(f.path.join(' → '))} | ${cell(`line ${f.at.line} ${f.at.field}`)} | ${cell(`${f.predicted.hop}, ${f.predicted.acted.join(' or ')}; ${f.predicted.hypothesis ?? 'a hypothesis'} fails`)} | ${f.failures} | ${cell(f.why)} |`),
    '',
  ];
}

/** One failed request of each cause, the earliest, as an example of it in words. */
function firstOfEachCause(analysis: Analysis): AttributionRow[] {
  const seen = new Set<string>();
  return analysis.attribution.rows.filter((r) => {
    const key = causeOf(r);
    if (key === undefined || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** "resilience score 87.5" (of 100), or why there is none. */
export function scoreText(score: Score): string {
  return score.value === null ? `no resilience score: ${score.reason ?? 'none computed'}` : `resilience score ${score.value}`;
}

/** What a rollback left where: "cart: f1, f2; error: connect ECONNREFUSED". */
export function remainingText(remaining: Readonly<Record<string, readonly string[]>>): string {
  return Object.entries(remaining).map(([where, ids]) => `${where}: ${ids.join(', ')}`).join('; ') || 'nothing left, yet not verified';
}
