// The Game days page: the running game days live (running.ts), the experiments of the control plane's
// --experiments directory with their schedules, next runs and blackouts — each with a dry run (its
// blast radius) that must be shown before it can be run — and the history of runs with their
// verdicts, scores, reports and trend (history.ts). Heads are pushed over server-sent events
// (GET /ui/gamedays/stream) as any runner writes them; the history is read again when a run ends.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { call } from './api.ts';
import { History, type HistoryRun } from './history.ts';
import { RunningGameDay, type Head } from './running.ts';

export interface ExperimentEntry {
  name: string;
  description: string;
  targets: string[];
  phases: { warmup: number; baseline: number; method: number; recovery: number };
  halts: string[];
  schedule: { cron: string; timezone: string; windows: string[]; blackouts: { from: string; to: string }[]; next: string[] } | null;
}
interface Schedule {
  experiments: Record<string, { lastRun: { scheduledFor: string; outcome: string } | null; nextRun: string | null }>;
}

const when = (iso: string) => iso.replace('T', ' ').slice(0, 19);
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s`;

export function GameDaysPage({ admin }: { admin: boolean }) {
  const [heads, setHeads] = useState<Head[]>();
  const [experiments, setExperiments] = useState<ExperimentEntry[]>();
  const [schedule, setSchedule] = useState<Schedule>();
  const [history, setHistory] = useState<HistoryRun[]>();
  const [error, setError] = useState<string>();
  const running = (heads ?? []).filter((h) => h.status === 'running');

  const refreshHistory = () =>
    call<{ runs: HistoryRun[] }>('GET', '/ui/gamedays/history').then((r) => {
      setHistory(r.runs);
      setError(undefined);
    }, (e: unknown) => setError((e as Error).message));
  useEffect(() => {
    const load = () =>
      Promise.all([call<{ experiments: ExperimentEntry[] }>('GET', '/gamedays/experiments'), call<Schedule>('GET', '/schedule')]).then(([e, s]) => {
        setExperiments(e.experiments);
        setSchedule(s);
      }, (e: unknown) => setError((e as Error).message));
    void load();
    const timer = setInterval(load, 30_000);
    return () => clearInterval(timer);
  }, []);
  // The heads, live; when the set of finished runs changes, the history (scores come from reports).
  const finished = (heads ?? []).filter((h) => h.status === 'complete').map((h) => h.id).join(',');
  useEffect(() => void refreshHistory(), [finished]);
  useEffect(() => {
    const source = new EventSource('/ui/gamedays/stream');
    source.addEventListener('heads', (e) => {
      setHeads(JSON.parse((e as MessageEvent<string>).data) as Head[]);
      setError(undefined);
    });
    source.onerror = () => setError('the live stream of game days broke; reconnecting');
    return () => source.close();
  }, []);

  return html`<section aria-labelledby="gd-title">
    <h1 id="gd-title">Game days</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <h2>Running</h2>
    ${running.length === 0
      ? html`<p class="empty" data-testid="no-running">No game day is running.</p>`
      : running.map((h) => html`<${RunningGameDay} key=${h.id} head=${h} admin=${admin} />`)}
    <h2>Experiments</h2>
    ${experiments?.length === 0 && html`<p class="empty" data-testid="no-experiments">No experiments: start the control plane with <code>--experiments DIR</code> (<code>faultline up --experiments DIR</code>) to run them from here.</p>`}
    <div class="cards">
      ${(experiments ?? []).map((e) => html`<${ExperimentCard} key=${e.name} experiment=${e} state=${schedule?.experiments[e.name]} admin=${admin} />`)}
    </div>
    <h2>History</h2>
    <${History} runs=${history} />
  </section>`;
}

function ExperimentCard({ experiment: e, state, admin }: { experiment: ExperimentEntry; state: Schedule['experiments'][string] | undefined; admin: boolean }) {
  const [dry, setDry] = useState<{ lines: string[]; seed: number }>();
  const [message, setMessage] = useState<string>();
  const [pending, setPending] = useState(false);
  const act = (what: () => Promise<void>) => async () => {
    setPending(true);
    setMessage(undefined);
    try {
      await what();
    } catch (error) {
      setMessage((error as Error).message);
    } finally {
      setPending(false);
    }
  };
  const dryRun = act(async () => setDry(await call<{ lines: string[]; seed: number }>('POST', '/v1/gamedays/dry-run', { experiment: e.name })));
  const run = act(async () => {
    // With the dry run's seed: endpoints chosen by seed are the ones it showed.
    await call('POST', '/v1/gamedays/run', { experiment: e.name, seed: dry!.seed });
    setDry(undefined);
    setMessage('Started: it shows under Running.');
  });
  const s = e.schedule;
  const now = Date.now();
  return html`<article class="card experiment" data-testid=${`experiment-${e.name}`} aria-labelledby=${`exp-${e.name}`}>
    <h3 id=${`exp-${e.name}`}>${e.name}</h3>
    ${e.description && html`<p class="rate">${e.description}</p>`}
    <p>targets <strong>${e.targets.join(', ') || 'every service'}</strong> · warm-up ${seconds(e.phases.warmup)}, baseline ${seconds(e.phases.baseline)}, method ${seconds(e.phases.method)}, recovery ${seconds(e.phases.recovery)}</p>
    ${e.halts.length > 0 && html`<p class="hint">halts when ${e.halts.join('; or ')}</p>`}
    ${s
      ? html`<div data-testid="schedule">
          <p>scheduled <code>${s.cron}</code> (${s.timezone})${s.windows.length ? html` · windows ${s.windows.join('; ')}` : ''}</p>
          <p>next runs: ${s.next.length ? s.next.map(when).join(', ') : 'none allowed'} (the scheduler's: ${state?.nextRun ? when(state.nextRun) : 'not running here'})${state?.lastRun ? ` · last: ${when(state.lastRun.scheduledFor)} ${state.lastRun.outcome}` : ''}</p>
          ${s.blackouts.length > 0 && html`<p>blackouts: ${s.blackouts.map((b) => html`<span class=${`blackout ${Date.parse(b.from) <= now && now < Date.parse(b.to) ? 'now' : ''}`}>${when(b.from)} → ${when(b.to)}</span> `)}</p>`}
        </div>`
      : html`<p class="hint">not scheduled: runs only when started</p>`}
    ${admin
      ? html`<div class="actions start">
          <button type="button" class="quiet" onClick=${dryRun} disabled=${pending} data-testid="dry-run">Dry run</button>
          <button type="button" onClick=${run} disabled=${pending || !dry} title=${dry ? 'Run it against this mesh' : 'Look at its dry run first'} data-testid="run">Run</button>
        </div>`
      : html`<p class="hint" data-testid="viewer-no-run">A viewer cannot run game days.</p>`}
    ${message && html`<p class="notice" role="status" data-testid="run-message">${message}</p>`}
    ${dry && html`<div class="dry-run" data-testid="blast-radius"><h4>Blast radius (dry run: nothing injected)</h4><pre>${dry.lines.join('\n')}</pre></div>`}
  </article>`;
}
