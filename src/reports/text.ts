// The machine- and people-readable reports besides the HTML: report.json (the analysis as is),
// report.md (the summary for a pull request or a wiki) and junit.xml (one test case per hypothesis,
// for CI gates: a failed hypothesis is a failure, an inconclusive one is skipped with its reason).
import type { Analysis } from '../analysis/types.ts';
import { describeLoad } from '../experiments/load.ts';
import { succeeded } from '../measures.ts';

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
    `**Resilience score ${analysis.score.value} / 100** — ${analysis.score.parts.map((p) => `${p.kind}: ${p.passed}/${p.total} passed × ${p.weight}`).join('; ') || 'no hypotheses'}.`,
    '',
    '## Hypotheses',
    '',
    '| outcome | hypothesis | window | measured | objective | samples |',
    '|---|---|---|---|---|---:|',
    ...analysis.hypotheses.map((h) => `| ${h.outcome.toUpperCase()} | ${cell(h.hypothesis)} | ${h.window} | ${cell(h.measured)} | ${cell(h.objective)} | ${h.samples} |`),
    '',
    '## Faults',
    '',
    '| fault | action | targets | injected | failed at the edge | factor |',
    '|---|---|---|---:|---:|---:|',
    ...analysis.faults.map((f) => `| ${cell(f.id)} | ${f.action} | ${f.targets.join(', ')} | ${f.injected} | ${f.failedAtEdge} | ${fixed(f.factor, 3)} |`),
    '',
    '## What the policies did with the calls the faults touched',
    '',
    '| fault | policy | calls |',
    '|---|---|---:|',
    ...analysis.attribution.totals.map((t) => `| ${cell(t.fault)} | ${t.policy} | ${t.count} |`),
    '',
    `Failed requests at the edge with a fault on their trace: ${analysis.attribution.rows.filter((r) => !succeeded(r.status)).length}; without one: ${analysis.attribution.unattributed}.`,
    '',
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
  if (r) lines.push('## Against earlier runs', '', `Previous: ${r.previous.map((p) => `${new Date(p.startedAt).toISOString()} ${p.outcome} score ${p.score}`).join('; ')}.`, '', r.worse.length ? r.worse.map((w) => `- worse: ${w}`).join('\n') : 'Nothing got worse.', '');
  return `${lines.filter((l, i, all) => !(l === '' && all[i - 1] === '')).join('\n')}\n`;
}

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function reportJunit(analysis: Analysis): string {
  const e = analysis.experiment;
  const failures = analysis.hypotheses.filter((h) => h.outcome === 'fail').length;
  const skipped = analysis.hypotheses.filter((h) => h.outcome === 'inconclusive').length;
  const seconds = ((e.finishedAt ?? e.startedAt) - e.startedAt) / 1000;
  const cases = analysis.hypotheses.map((h) => {
    const open = `    <testcase classname="faultline.${xml(e.name)}" name="${xml(`${h.hypothesis} [${h.window}]`)}" time="0">`;
    const detail = `measured ${h.measured}, objective ${h.objective}, ${h.samples} samples`;
    if (h.outcome === 'fail') return `${open}\n      <failure message="${xml(detail)}" type="hypothesis">${xml(detail)}</failure>\n    </testcase>`;
    if (h.outcome === 'inconclusive') return `${open}\n      <skipped message="${xml(`inconclusive: ${detail}`)}"/>\n    </testcase>`;
    return `${open}</testcase>`;
  });
  const halted = e.outcome === 'halted' ? `\n    <testcase classname="faultline.${xml(e.name)}" name="the run was not halted" time="0">\n      <failure message="${xml(e.reason ?? 'halted')}" type="halt"/>\n    </testcase>` : '';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="faultline" tests="${analysis.hypotheses.length + (halted ? 1 : 0)}" failures="${failures + (halted ? 1 : 0)}" skipped="${skipped}" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="${xml(e.name)}" tests="${analysis.hypotheses.length + (halted ? 1 : 0)}" failures="${failures + (halted ? 1 : 0)}" errors="0" skipped="${skipped}" time="${seconds.toFixed(3)}" timestamp="${new Date(e.startedAt).toISOString()}">`,
    `    <properties><property name="seed" value="${e.seed}"/><property name="score" value="${analysis.score.value}"/><property name="outcome" value="${xml(e.outcome ?? 'incomplete')}"/></properties>`,
    ...cases,
    ...(halted ? [halted.slice(1)] : []),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
