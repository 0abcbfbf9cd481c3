// A running game day, live from its head (GET /gamedays, each second): its phase among the phases, its
// load's last seconds as its runner sees them (rps, errors, p99), the faults in force, each halt
// condition and how close it is, the verdicts as they arrive — and Halt (POST /v1/gamedays/:id/halt),
// which closes its head: its runner halts and rolls back, wherever it runs.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { call } from './api.ts';

export interface HaltStanding {
  condition: string;
  value: number | null;
  limit: number;
  kind: 'below' | 'above';
  samples: number;
  holds: boolean;
}
export interface Head {
  id: string;
  experiment: string;
  status: 'running' | 'complete';
  outcome: string | null;
  reason: string | null;
  phase: string | null;
  startedAt: string;
  finishedAt: string | null;
  runner: string;
  faults: string[];
  closedBy?: string;
  verdicts?: { hypothesis: string; window: string; outcome: string; measured: string }[];
  live?: { at: string; rps: number; errorPct: number | null; p99Ms: number | null; halts: HaltStanding[] };
}

export const PHASES = ['preflight', 'warm-up', 'baseline', 'method', 'rollback', 'recovery'];

/** How far a halt condition's measure has gone towards its limit: 0 (far) to 1 (there). */
function closeness(h: HaltStanding): number {
  if (h.value === null) return 0;
  if (h.kind === 'below') return Math.max(0, Math.min(1, (100 - h.value) / Math.max(100 - h.limit, 1e-9)));
  return Math.max(0, Math.min(1, h.value / h.limit));
}

export function RunningGameDay({ head, admin }: { head: Head; admin: boolean }) {
  const [message, setMessage] = useState<string>();
  const live = head.live;
  const at = PHASES.indexOf(head.phase ?? '');
  const halt = async () => {
    try {
      await call('POST', `/v1/gamedays/${head.id}/halt`, {});
      setMessage('Halting: its runner rolls back.');
    } catch (error) {
      setMessage(`The halt failed: ${(error as Error).message}`);
    }
  };
  return html`<article class="card running" data-testid=${`running-${head.experiment}`} aria-labelledby=${`run-${head.id}`}>
    <h3 id=${`run-${head.id}`}>${head.experiment} <small>${head.id} · ${head.runner}</small></h3>
    <ol class="phases" aria-label="Phases">
      ${PHASES.map((p, i) => html`<li class=${i < at ? 'done' : i === at ? 'current' : ''} aria-current=${i === at ? 'step' : undefined}>${p}</li>`)}
    </ol>
    <p class="figures" data-testid="live-figures">
      <span>phase <strong data-testid="run-phase">${head.phase ?? '–'}</strong></span>
      <span>${live ? `${live.rps} rps` : '– rps'}</span>
      <span>errors ${live?.errorPct ?? '–'} %</span>
      <span>p99 ${live?.p99Ms ?? '–'} ms</span>
      <span>faults in force: <strong data-testid="run-faults">${head.faults.join(', ') || 'none'}</strong></span>
    </p>
    ${live && live.halts.length > 0 && html`<ul class="halts" aria-label="Halt conditions" data-testid="halts">
      ${live.halts.map((h) => html`<li class=${h.holds ? 'holds' : ''}>
        <span>${h.condition}: now ${h.value === null ? 'no samples' : `${h.value.toFixed(h.kind === 'below' ? 1 : 0)}${h.kind === 'below' ? ' %' : ' ms'}`} (${h.samples} samples)</span>
        <meter min="0" max="1" low="0.5" high="0.8" optimum="0" value=${closeness(h)} aria-label=${`how close: ${Math.round(100 * closeness(h))} %`}></meter>
      </li>`)}
    </ul>`}
    ${head.verdicts && html`<${Verdicts} verdicts=${head.verdicts} />`}
    ${head.closedBy && html`<p class="warn" data-testid="halting">Halting: ${head.reason}</p>`}
    ${admin && !head.closedBy && html`<div class="actions"><button type="button" class="danger" onClick=${halt} data-testid="halt-run">Halt this game day</button></div>`}
    ${message && html`<p class="notice" role="status">${message}</p>`}
  </article>`;
}

export function Verdicts({ verdicts }: { verdicts: NonNullable<Head['verdicts']> }) {
  return html`<div class="table-wrap"><table data-testid="verdicts">
    <thead><tr><th scope="col">hypothesis</th><th scope="col">window</th><th scope="col">verdict</th><th scope="col">measured</th></tr></thead>
    <tbody>${verdicts.map((v) => html`<tr><td>${v.hypothesis}</td><td>${v.window}</td><td class=${`outcome ${v.outcome}`}>${v.outcome}</td><td>${v.measured}</td></tr>`)}</tbody>
  </table></div>`;
}
