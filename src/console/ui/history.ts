// The history of game days (GET /ui/gamedays/history): each finished run's verdict, reason and score,
// opening its report (a separate document, /ui/reports/:id, when this control plane holds it), and per
// experiment the run-over-run trend of its score as a small SVG.
import { html } from 'htm/preact';

export interface HistoryRun {
  id: string;
  experiment: string;
  outcome: string | null;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  score: number | null;
  report: boolean;
  dir: string;
  runner: string;
}

const W = 240;
const H = 60;

export function History({ runs }: { runs: HistoryRun[] | undefined }) {
  if (!runs) return html`<p class="loading">Loading…</p>`;
  if (runs.length === 0) return html`<p class="empty" data-testid="no-history">No game day has finished against this control plane.</p>`;
  const byExperiment = new Map<string, HistoryRun[]>();
  for (const r of [...runs].reverse()) byExperiment.set(r.experiment, [...(byExperiment.get(r.experiment) ?? []), r]);
  return html`
    <div class="cards trends">${[...byExperiment].map(([name, list]) => html`<${Trend} key=${name} experiment=${name} runs=${list} />`)}</div>
    <div class="table-wrap"><table data-testid="history">
      <thead><tr><th scope="col">run</th><th scope="col">experiment</th><th scope="col">verdict</th><th scope="col">score</th><th scope="col">started</th><th scope="col">report</th></tr></thead>
      <tbody>${runs.map((r) => html`<tr data-testid=${`history-${r.id}`}>
        <td>${r.id}</td><td>${r.experiment}</td>
        <td class=${`outcome ${r.outcome ?? ''}`} title=${r.reason ?? ''}>${r.outcome ?? '–'}${r.reason && html`<small class="reason">${r.reason}</small>`}</td>
        <td>${r.score ?? '–'}</td>
        <td>${r.startedAt.replace('T', ' ').slice(0, 19)}</td>
        <td>${r.report ? html`<a href=${`/ui/reports/${r.id}`} target="_blank" rel="noopener noreferrer" data-testid="open-report">report</a>` : html`<span class="hint" title=${`recorded in ${r.dir} by ${r.runner}`}>not on this control plane</span>`}</td>
      </tr>`)}</tbody>
    </table></div>`;
}

/** Score over the runs of one experiment, oldest to newest; runs without a score are gaps. */
function Trend({ experiment, runs }: { experiment: string; runs: HistoryRun[] }) {
  const scored = runs.map((r, i) => ({ i, score: r.score, outcome: r.outcome })).filter((p): p is { i: number; score: number; outcome: string | null } => p.score !== null);
  const x = (i: number) => (runs.length === 1 ? W / 2 : 8 + (i * (W - 16)) / (runs.length - 1));
  const y = (score: number) => H - 6 - (score / 100) * (H - 12);
  const path = scored.map((p, k) => `${k ? 'L' : 'M'}${x(p.i).toFixed(1)},${y(p.score).toFixed(1)}`).join(' ');
  const last = scored.at(-1);
  return html`<figure class="card trend" data-testid=${`trend-${experiment}`}>
    <figcaption>${experiment}: ${runs.length} run${runs.length === 1 ? '' : 's'}, score ${last ? `${last.score} last` : 'none yet'}</figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} width=${W} height=${H} role="img" aria-label=${`score over runs: ${scored.map((p) => p.score).join(', ') || 'none'}`}>
      <line x1="0" x2=${W} y1=${y(100)} y2=${y(100)} class="grid" />
      <line x1="0" x2=${W} y1=${y(0)} y2=${y(0)} class="grid" />
      ${path && html`<path d=${path} class="line" />`}
      ${scored.map((p) => html`<circle cx=${x(p.i)} cy=${y(p.score)} r="3.5" class=${`dot ${p.outcome ?? ''}`}><title>${`${p.score} (${p.outcome ?? ''})`}</title></circle>`)}
    </svg>
  </figure>`;
}
