// The Game days page, first part: the runs the control plane knows of (GET /gamedays: their journal
// heads) and the schedule (GET /schedule). Running one from here and watching it live comes later.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { call } from './api.ts';

interface Head {
  id: string;
  experiment: string;
  status: string;
  outcome: string | null;
  phase: string | null;
  startedAt: string;
  finishedAt: string | null;
  faults: string[];
  scheduledBy?: string;
}
interface Schedule {
  experiments: Record<string, { next?: string | null; last?: string | null; [k: string]: unknown }>;
  history: unknown[];
}

export function GameDaysPage() {
  const [heads, setHeads] = useState<Head[]>();
  const [schedule, setSchedule] = useState<Schedule>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = () =>
      Promise.all([call<{ heads: Head[] }>('GET', '/gamedays'), call<Schedule>('GET', '/schedule')]).then(([h, s]) => {
        setHeads(h.heads);
        setSchedule(s);
        setError(undefined);
      }, (e: unknown) => setError((e as Error).message));
    void load();
    const timer = setInterval(load, 5_000);
    return () => clearInterval(timer);
  }, []);
  const scheduled = Object.entries(schedule?.experiments ?? {});
  return html`<section aria-labelledby="gd-title">
    <h1 id="gd-title">Game days</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <h2>Runs</h2>
    <div class="table-wrap">
      <table data-testid="gamedays-table">
        <thead><tr><th scope="col">run</th><th scope="col">experiment</th><th scope="col">status</th><th scope="col">phase</th><th scope="col">outcome</th><th scope="col">started</th><th scope="col">faults</th></tr></thead>
        <tbody>
          ${heads?.length === 0 && html`<tr><td colspan="7" class="empty" data-testid="no-gamedays">No game day has run against this control plane.</td></tr>`}
          ${(heads ?? []).map((h) => html`<tr><td>${h.id}</td><td>${h.experiment}</td><td>${h.status}</td><td>${h.phase ?? '–'}</td><td class=${`outcome ${h.outcome ?? ''}`}>${h.outcome ?? '–'}</td><td>${h.startedAt.replace('T', ' ').slice(0, 19)}</td><td>${h.faults.join(', ') || '–'}</td></tr>`)}
        </tbody>
      </table>
    </div>
    <h2>Schedule</h2>
    ${scheduled.length === 0
      ? html`<p class="empty" data-testid="no-schedule">No scheduled experiment (faultline control --experiments DIR schedules them).</p>`
      : html`<div class="table-wrap"><table><thead><tr><th scope="col">experiment</th><th scope="col">state</th></tr></thead><tbody>
          ${scheduled.map(([name, state]) => html`<tr><td>${name}</td><td>${Object.entries(state).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ')}</td></tr>`)}
        </tbody></table></div>`}
    <aside class="later" data-testid="gameday-run-placeholder">
      <h2>Run a game day</h2>
      <p>Starting a game day from here, its dry run (blast radius) and watching it live — phases, hypotheses, halt conditions — come in the next part of the console. Until then: <code>faultline run EXPERIMENT.yaml</code>; its run appears in the list above.</p>
    </aside>
  </section>`;
}
