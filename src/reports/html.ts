// report.html: one self-contained HTML5 document for people — inline CSS and inline SVG charts, no
// script and no external URL, so it opens from a CI artifact or an e-mail as is. Summary first (outcome,
// reason, seed, duration, the score with its parts), then the verdicts, the charts, the faults, the
// policy checks, the attribution (which fault and policy each failed request comes down to), and the
// cohort comparison and regression when the run has them.
// Every string from the analysis is escaped: a fault id or a reason holding markup shows as text.
import type { Analysis, AttributionRow } from '../analysis/types.ts';
import { describeLoad } from '../experiments/load.ts';
import { renderCharts, type Chart } from './charts.ts';
import { remainingText } from './text.ts';

/** Rows of the attribution table; the totals above it count them all. */
export const ATTRIBUTION_ROWS = 200;

export async function renderHtml(analysis: Analysis): Promise<string> {
  const charts = await renderCharts(analysis);
  const e = analysis.experiment;
  const outcome = e.outcome ?? 'incomplete';
  const title = `Game day ${e.name}: ${outcome.toUpperCase()}`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Defence in depth: even a string that escaped escaping could not run or fetch anything.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<header><h1>Game day <span class="name">${esc(e.name)}</span> <span class="outcome ${cls(outcome)}">${esc(outcome.toUpperCase())}</span></h1>${e.description ? `<p class="description">${esc(e.description)}</p>` : ''}</header>`,
    '<main>',
    summary(analysis),
    verdicts(analysis),
    chartsSection(charts),
    faults(analysis),
    services(analysis),
    policies(analysis),
    attribution(analysis),
    lintFindings(analysis),
    cohorts(analysis),
    regression(analysis),
    '</main>',
    `<footer>faultline report · schema ${esc(analysis.schema)}</footer>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text and attribute values alike. */
const esc = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
/** A class name from a closed set of words; anything else becomes a harmless token. */
const cls = (word: string) => word.toLowerCase().replace(/[^a-z0-9-]/g, '-');

const fixed = (n: number | null | undefined, digits = 1) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));
const pct = (n: number | null | undefined, digits = 1) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(digits)} %`);
const ratio = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : `${(100 * n).toFixed(1)} %`);
const ms = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);
const iso = (t: number | null | undefined) => (t === null || t === undefined || !Number.isFinite(t) ? '–' : new Date(t).toISOString());
/** "p = 0.0123", or "p < 0.0001" rather than a row of zeros. */
const pValue = (p: number) => (!Number.isFinite(p) ? 'p = –' : p < 0.0001 ? 'p < 0.0001' : `p = ${p.toFixed(4)}`);
const num = (n: number) => (Number.isFinite(n) ? n.toLocaleString('en-US') : '–');

function duration(msTotal: number): string {
  const s = Math.round(msTotal / 100) / 10;
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** A table from header cells and rows of already-escaped cells; `numeric` columns align right. */
function table(attrs: string, head: readonly string[], rows: readonly (readonly string[])[], numeric: readonly number[] = [], rowAttrs: readonly string[] = []): string {
  const th = head.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const body = rows.map((r, k) => `<tr${rowAttrs[k] ? ` ${rowAttrs[k]}` : ''}>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`);
  return `<table${attrs ? ` ${attrs}` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

const section = (id: string, heading: string, body: string) => `<section id="${id}"><h2>${esc(heading)}</h2>\n${body}\n</section>`;
const empty = (text: string) => `<p class="empty">${esc(text)}</p>`;

function summary(a: Analysis): string {
  const e = a.experiment;
  const end = e.finishedAt ?? Math.max(e.startedAt, ...a.timeseries.map((b) => b.to));
  const counts = { pass: 0, fail: 0, inconclusive: 0, 'not-run': 0 };
  for (const h of a.hypotheses) counts[h.outcome]++;
  const facts: [string, string][] = [
    ['Outcome', `<span class="outcome ${cls(e.outcome ?? 'incomplete')}">${esc((e.outcome ?? 'incomplete').toUpperCase())}</span>`],
    ['Reason', e.reason ? esc(e.reason) : '–'],
    ['Seed', esc(e.seed)],
    ['Started', esc(iso(e.startedAt))],
    ['Finished', e.finishedAt ? esc(iso(e.finishedAt)) : 'not finished'],
    ['Duration', `${esc(duration(end - e.startedAt))}${e.complete ? '' : ' (recording incomplete)'}`],
    ['Load', a.load ? esc(describeLoad(a.load)) : 'none sent'],
    ['Hypotheses', `${counts.pass} passed, ${counts.fail} failed, ${counts.inconclusive} inconclusive${counts['not-run'] ? `, ${counts['not-run']} not run` : ''}`],
    ['Rollback', e.rollback ? (e.rollback.verified ? 'verified' : `<strong>NOT verified</strong>: ${esc(remainingText(e.rollback.remaining))}`) : 'none recorded'],
    ['Halts', a.halts.length ? `<ul class="halts">${a.halts.map((h) => `<li>+${esc(fixed((h.at - e.startedAt) / 1000))} s (${esc(iso(h.at))}): ${esc(h.reason)}</li>`).join('')}</ul>` : 'none'],
  ];
  const possible = a.score.parts.reduce((s, p) => s + p.weight * p.total, 0);
  const earned = a.score.parts.reduce((s, p) => s + p.points, 0);
  const parts = a.score.parts.length
    ? table(
        'id="score-parts"',
        ['hypothesis kind', 'passed', 'weight each', 'points', 'of'],
        a.score.parts.map((p) => [esc(p.kind), `${esc(p.passed)} / ${esc(p.total)}`, esc(p.weight), esc(fixed(p.points, 1)), esc(p.weight * p.total)]),
        [1, 2, 3, 4],
      )
    : empty('No hypotheses, so nothing to score.');
  const score = a.score.value === null
    ? `<div class="score"><p class="score-value"><strong>No resilience score</strong>: ${esc(a.score.reason ?? 'none computed')}.</p></div>`
    : `<div class="score"><p class="score-value"><strong>Resilience score ${esc(fixed(a.score.value, 1))} / 100</strong> — ${esc(fixed(earned, 1))} of ${esc(possible)} points: a hypothesis earns its kind's weight when it passes, half when inconclusive, nothing when it fails; hypotheses not run are left out.</p>\n${parts}</div>`;
  return section('summary', 'Summary', `<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>\n${score}`);
}

function verdicts(a: Analysis): string {
  if (!a.hypotheses.length) return section('hypotheses', 'Hypotheses', `<table id="verdicts"><tbody></tbody></table>${empty('The experiment states no hypotheses.')}`);
  return section(
    'hypotheses',
    'Hypotheses',
    table(
      'id="verdicts"',
      ['hypothesis', 'window', 'measured', 'objective', 'samples', 'outcome'],
      a.hypotheses.map((h) => [`${esc(h.hypothesis)} <span class="kind">${esc(h.kind)}</span>`, esc(h.window), esc(h.measured), esc(h.objective), esc(num(h.samples)), `<span class="badge ${cls(h.outcome)}">${esc(h.outcome.toUpperCase())}</span>`]),
      [4],
      a.hypotheses.map((h) => `class="verdict ${cls(h.outcome)}" data-id="${esc(h.id)}"`),
    ),
  );
}

function chartsSection(charts: readonly Chart[]): string {
  if (!charts.length) return section('charts', 'Charts', empty('The recording holds no time series to chart.'));
  const figures = charts.map((c) => `<figure class="chart" id="chart-${esc(c.id)}">\n${inlineSvg(c.svg, c.id, c.title)}\n<figcaption>${esc(c.title)}</figcaption>\n</figure>`);
  const legend = '<p class="legend"><span class="swatch fault"></span> fault window, labelled with the fault id · <span class="swatch halt"></span> halt · time in seconds since the run started</p>';
  return section('charts', 'Charts', `${legend}\n<div class="charts">\n${figures.join('\n')}\n</div>`);
}

/**
 * vega's SVG as an element of this document: without the unused xlink namespace (one URL less), with
 * any ids made unique per chart so that two charts' clip paths or gradients cannot collide.
 */
function inlineSvg(svg: string, id: string, title: string): string {
  let out = svg.replace(/^<\?xml[^>]*>\s*/, '');
  if (!/xlink:/.test(out.replace(/xmlns:xlink="[^"]*"/, ''))) out = out.replace(/\s+xmlns:xlink="[^"]*"/, '');
  // Only inside tags: text content is escaped by vega, so "<" starts a tag and never a label.
  out = out.replace(/<[a-zA-Z][^>]*>/g, (tag) => tag.replace(/\bid="([^"]+)"/g, (_m, v: string) => `id="${id}-${v}"`).replace(/url\(#([^)]+)\)/g, (_m, v: string) => `url(#${id}-${v})`));
  return out.replace(/^<svg\b/, `<svg role="img" aria-label="${esc(title)}"`);
}

function faults(a: Analysis): string {
  if (!a.faults.length) return section('faults', 'Faults', empty('No fault was injected.'));
  const effect = (f: number | null) => (f === null || !Number.isFinite(f) ? '' : f > 1 ? ' <span class="note">amplified</span>' : f < 1 ? ' <span class="note">masked</span>' : '');
  return section(
    'faults',
    'Faults',
    table(
      'id="faults"',
      ['fault', 'action', 'targets', 'in force', 'injected', 'failed at the edge', 'factor', 'instances hit'],
      a.faults.map((f) => [
        `<code>${esc(f.id)}</code>`,
        esc(f.action),
        esc(f.targets.join(', ')),
        f.injectedAt === null ? 'never' : `+${esc(fixed((f.injectedAt - a.experiment.startedAt) / 1000))} s – ${f.removedAt === null ? 'end' : `+${esc(fixed((f.removedAt - a.experiment.startedAt) / 1000))} s`}`,
        esc(num(f.injected)),
        esc(num(f.failedAtEdge)),
        `${esc(fixed(f.factor, 3))}${effect(f.factor)}`,
        f.instances.length ? f.instances.map((i) => `<code>${esc(i.endpoint)}</code> ×${esc(num(i.count))}`).join(', ') : '–',
      ]),
      [4, 5, 6],
    ) + '\n<p class="note">factor = requests failed at the edge ÷ times the fault acted: above 1 the mesh amplified the fault, below 1 it masked it. Instances hit: where the injection knew the instance (an attempt after balancing, inbound), times per instance.</p>',
  );
}

function services(a: Analysis): string {
  if (!a.services.length) return '';
  return section(
    'services',
    'Services by window',
    table(
      'id="services"',
      ['service', 'window', 'requests', 'rps', 'availability', 'p50', 'p99', 'max', 'burn rate'],
      a.services.map((s) => [esc(s.service), esc(s.window), esc(num(s.requests)), esc(fixed(s.rps)), esc(pct(s.availability, 2)), esc(ms(s.latency.p50)), esc(ms(s.latency.p99)), esc(ms(s.latency.max)), esc(s.burn.map((b) => `${fixed(b.rate, 2)}× (SLO ${b.slo} %)`).join(', ') || '–')]),
      [2, 3, 4, 5, 6, 7],
    ),
  );
}

function policies(a: Analysis): string {
  const p = a.policies;
  const parts: string[] = [];
  parts.push('<h3>Retries</h3>');
  parts.push(
    p.retries.length
      ? table(
          'id="policy-retries"',
          ['service', 'injected aborts', 'masked by retries', 'masking ratio', 'attempts', 'requests', 'amplification'],
          p.retries.map((r) => [esc(r.service), esc(num(r.injectedAborts)), esc(num(r.masked)), esc(ratio(r.maskingRatio)), esc(num(r.attempts)), esc(num(r.requests)), r.amplification === null ? '–' : `${esc(fixed(r.amplification, 2))}×`]),
          [1, 2, 3, 4, 5, 6],
        )
      : empty('No retries were recorded.'),
  );
  parts.push('<h3>Circuit breakers</h3>');
  parts.push(p.breakers.length ? table('id="policy-breakers"', ['service', 'opened after', 'closed after'], p.breakers.map((b) => [esc(b.service), b.opensAfterMs === null ? 'did not open' : esc(ms(b.opensAfterMs)), b.closesAfterMs === null ? 'did not close' : esc(ms(b.closesAfterMs))]), [1, 2]) : empty('No breaker changed state.'));
  parts.push('<h3>Outlier ejections</h3>');
  parts.push(
    p.ejections.length
      ? table(
          'id="policy-ejections"',
          ['service', 'endpoint', 'by', 'ejected', 'restored', 'detector', 'why'],
          p.ejections.map((j) => [
            esc(j.service),
            `<code>${esc(j.endpoint)}</code>`,
            esc(j.sidecar),
            `+${esc(fixed((j.ejectedAt - a.experiment.startedAt) / 1000))} s`,
            j.restoredAt === null ? 'not restored' : `+${esc(fixed((j.restoredAt - a.experiment.startedAt) / 1000))} s`,
            esc(j.detector ?? '–'),
            esc(j.reason),
          ]),
          [3, 4],
        )
      : empty('No endpoint was ejected.'),
  );
  parts.push('<h3>Recovery after rollback</h3>');
  parts.push(p.recovery.length ? table('id="policy-recovery"', ['service', 'back to steady state after'], p.recovery.map((r) => [esc(r.service), r.afterMs === null ? '<span class="bad">not recovered</span>' : esc(ms(r.afterMs))]), [1]) : empty('No recovery was measured.'));
  return section('policies', 'Policy checks', parts.join('\n'));
}

function attribution(a: Analysis): string {
  const t = a.attribution;
  const faultList = (faults: readonly string[]) => faults.map((f) => `<code>${esc(f)}</code>`).join(', ');
  const causes = t.causes.length ? table('id="attribution-causes"', ['faults', 'surfaced at', 'sidecar', 'policy that acted', 'retry', 'failures'], t.causes.map((c) => [faultList(c.faults), esc(c.hop), esc(c.sidecar), esc(c.acted), esc(c.retry), esc(num(c.failures))]), [5]) : empty('No failed request at the edge came down to a fault.');
  const totals = t.totals.length ? table('id="attribution-totals"', ['fault', 'what the policies did', 'calls'], t.totals.map((x) => [`<code>${esc(x.fault)}</code>`, esc(x.policy), esc(num(x.count))]), [2]) : empty('No failed or slow call had a fault on its trace.');
  const shown = t.rows.slice(0, ATTRIBUTION_ROWS);
  const more = t.rows.length > shown.length ? `<p class="note">The first ${shown.length} of ${t.rows.length} calls.</p>` : '';
  // The hops on the way out, after the surfaced one: what each caller's policies could have done.
  const outward = (r: AttributionRow) => r.path.slice(1).map((h) => `${esc(h.hop)}: ${esc(h.status === 0 ? 'no answer' : h.status)} (${esc(h.acted)}; retry ${esc(h.retry.verdict)})`).join('<br>');
  const row = (r: AttributionRow) => [
    `+${esc(fixed((r.at - a.experiment.startedAt) / 1000, 3))} s`,
    `<code>${esc(r.requestId)}</code>`,
    `${faultList(r.faults)}${r.faultHop ? ` on ${esc(r.faultHop)}` : ''} (${esc(r.via)})`,
    r.surfaced ? `${esc(r.surfaced.hop)} <span class="note">(${esc(r.surfaced.sidecar)})</span>` : '–',
    r.status === 0 ? 'no answer' : esc(r.status),
    esc(ms(r.latencyMs)),
    r.surfaced ? `${esc(r.surfaced.acted)}: ${esc(r.surfaced.how)}` : esc(r.policy),
    r.surfaced ? `${esc(r.surfaced.retry.verdict)}: ${esc(r.surfaced.retry.why)}` : '–',
    outward(r),
    esc(r.flags.join(', ')),
  ];
  const rows = shown.length ? table('id="attribution"', ['at', 'request', 'faults', 'surfaced at', 'status', 'latency', 'policy that acted', 'retry', 'on the way out', 'flags'], shown.map(row), [0, 4, 5]) : '<table id="attribution"><tbody></tbody></table>';
  return section('attribution-section', 'Which fault and which policy each failed request comes down to', `${causes}\n<p>Failed calls with no fault on their trace: <strong>${esc(num(t.unattributed))}</strong>.</p>\n<h3>What the policies did with every call a fault touched</h3>\n${totals}\n<h3>Request by request</h3>\n${rows}\n${more}`);
}

/** The lint findings of the run's mesh that predict a game day, and whether this run confirms each. */
function lintFindings(a: Analysis): string {
  const l = a.lint;
  if (!l) return '';
  const heading = 'Lint findings this run confirms';
  if (l.error !== null) return section('lint', heading, empty(`The run's mesh file could not be linted: ${l.error}`));
  const others = l.unpredicted > 0 ? ` ${l.unpredicted} other finding${l.unpredicted === 1 ? '' : 's'} predict${l.unpredicted === 1 ? 's' : ''} no game day.` : '';
  if (l.findings.length === 0) return section('lint', heading, empty(`faultline lint finds nothing in the run's mesh file that a game day could confirm.${others}`));
  // Confirmed: the finding's failure is real (red); tested and not shown: inconclusive; never tested: a note.
  const status = (s: string) => (s === 'not-exercised' ? `<span class="note">${esc(s)}</span>` : `<span class="badge ${s === 'confirmed' ? 'fail' : 'inconclusive'}">${esc(s)}</span>`);
  const rows = l.findings.map((f) => [
    status(f.status),
    `<code>${esc(f.rule)}</code> (${esc(f.severity)})<br>${esc(f.message)}`,
    esc(f.path.join(' → ')),
    `line ${esc(f.at.line)} <code>${esc(f.at.field)}</code>`,
    `${esc(f.predicted.hop)}, ${esc(f.predicted.acted.join(' or '))}; ${esc(f.predicted.hypothesis ?? 'a hypothesis')} fails`,
    esc(num(f.failures)),
    esc(f.why),
  ]);
  const confirmed = l.findings.filter((f) => f.status === 'confirmed').length;
  return section('lint', heading, `<p><strong>${esc(confirmed)}</strong> of ${esc(l.findings.length)} finding${l.findings.length === 1 ? '' : 's'} of <code>faultline lint</code> on the run's mesh file confirmed by this run.${esc(others)}</p>\n${table('id="lint-findings"', ['status', 'finding', 'path', 'at', 'predicted', 'failures there', 'why'], rows, [5])}`);
}

function cohorts(a: Analysis): string {
  const c = a.cohorts;
  if (!c) return '';
  const sig = (s: boolean) => (s ? '<span class="bad">significant</span> at 5 %' : 'not significant at 5 %');
  return section(
    'cohorts',
    `Experiment cohort against the control group on ${c.service}`,
    table(
      'id="cohort"',
      ['group', 'requests', 'availability', 'p99'],
      [
        ['experiment', esc(num(c.experiment.requests)), esc(pct(c.experiment.availability, 2)), esc(ms(c.experiment.p99))],
        ['control', esc(num(c.control.requests)), esc(pct(c.control.availability, 2)), esc(ms(c.control.p99))],
      ],
      [1, 2, 3],
    ) +
      `\n<p>Availability: two-proportion z = ${esc(fixed(c.availabilityTest.z, 2))}, ${esc(pValue(c.availabilityTest.pValue))}, ${sig(c.availabilityTest.significant)}. ` +
      `Latency: Mann–Whitney U = ${esc(fixed(c.latencyTest.u, 0))}, ${esc(pValue(c.latencyTest.pValue))}, ${sig(c.latencyTest.significant)}.</p>`,
  );
}

function regression(a: Analysis): string {
  const r = a.regression;
  if (!r) return '';
  const previous = table('id="previous-runs"', ['run', 'started', 'outcome', 'score'], r.previous.map((p) => [`<code>${esc(p.dir)}</code>`, esc(iso(p.startedAt)), esc(p.outcome ?? '–'), esc(fixed(p.score, 1))]), [3]);
  const worse = r.worse.length ? `<ul class="worse">${r.worse.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p>Nothing got worse.</p>';
  return section('regression', 'Against earlier runs', `${previous}\n<h3>Worse than before</h3>\n${worse}`);
}

const STYLE = `
:root { --pass: #1a7f37; --fail: #cf222e; --inconclusive: #9a6700; --fault: #fdd0a2; --halt: #b2182b; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; background: #f6f8fa; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 16px 20px; margin: 16px 0; overflow-x: auto; }
.description { color: var(--muted); margin: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.halts { margin: 0; padding-left: 18px; }
.outcome, .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700; color: #fff; background: var(--muted); vertical-align: middle; }
.outcome.passed, .badge.pass { background: var(--pass); }
.outcome.failed, .outcome.error, .badge.fail { background: var(--fail); }
.outcome.halted { background: var(--halt); }
.outcome.inconclusive, .badge.inconclusive { background: var(--inconclusive); }
.score-value { font-size: 15px; margin: 8px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.verdict.pass td:first-child { border-left: 4px solid var(--pass); }
tr.verdict.fail td:first-child { border-left: 4px solid var(--fail); }
tr.verdict.fail { background: #ffebe9; }
tr.verdict.inconclusive td:first-child { border-left: 4px solid var(--inconclusive); }
tr.verdict.inconclusive { background: #fff8c5; }
.kind { color: var(--muted); font-size: 11px; margin-left: 6px; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: #f6f8fa; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.note, .empty, .legend { color: var(--muted); font-size: 12px; }
.bad { color: var(--fail); font-weight: 600; }
div.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 8px 24px; }
figure.chart { margin: 8px 0 12px; min-width: 0; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.swatch { display: inline-block; width: 14px; height: 10px; vertical-align: middle; }
.swatch.fault { background: var(--fault); }
.swatch.halt { width: 3px; background: var(--halt); }
footer { color: var(--muted); font-size: 12px; padding-bottom: 24px; }
@media print { body { background: #fff; } section { break-inside: avoid; border: none; } }
`;
