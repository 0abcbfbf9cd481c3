// A game day's load, as the run sees it: one interface a load model implements (loads/, one model a
// file), the target it sends to, the record it makes of every request, and the one classification of
// those records that the summary, verdicts, halts, analysis and reports all count by.
import { percentile, succeeded } from '../measures.ts';
import type { Experiment } from './spec.ts';

export interface LoadRecord {
  /** Epoch milliseconds when the response (or the error) came; for a missed start, when it was due. */
  readonly t: number;
  /** From the request's intended start (its place in the schedule) to its response: the wait for a free slot is in it. */
  readonly latencyMs: number;
  /** 0 for an error or a timeout (no response), a cut request or a missed start. */
  readonly status: number;
  readonly cohort: 'experiment' | 'control' | 'all';
  /**
   * Set when the system under test did not decide the request's end: `cut` when the load's own stop
   * cancelled it, `missed` when it was never sent (its start found the in-flight cap reached).
   */
  readonly kind?: 'cut' | 'missed';
  /** The x-request-id it was sent with, when the model sets one (the open model does). */
  readonly requestId?: string;
  /** From the intended start to the send: the generator's own lateness, inside latencyMs (open model). */
  readonly lagMs?: number;
}

/** What became of one request of the load; `cut` and `missed` are the load's doing, not the system's. */
export type LoadOutcome = 'ok' | 'failed' | 'cut' | 'missed';

export function outcomeOf(r: LoadRecord): LoadOutcome {
  return r.kind ?? (succeeded(r.status) ? 'ok' : 'failed');
}

/** A sample of the system under test: a request it answered or failed (not cut by the load, not missed). */
export function isSample(r: LoadRecord): boolean {
  return r.kind === undefined;
}

/** How a run's load was made: the journal keeps it, the summary and reports state it. */
export interface LoadRun {
  readonly model: 'open' | 'closed';
  /** The rate asked for, per second. */
  readonly rate: number;
  /** Most requests in flight at once (open model); null when the model has no such cap. */
  readonly maxInFlight: number | null;
  /** Epoch milliseconds: the first start due, and when starting ended (its duration, or a stop). */
  readonly from: number;
  readonly to: number;
}

export interface LoadFigures extends Record<LoadOutcome, number> {
  readonly model: LoadRun['model'];
  readonly rate: number;
  /** Requests sent per second over the load's span (missed starts are not sent). */
  readonly achieved: number;
  readonly sent: number;
  readonly maxInFlight: number | null;
  /** p99 of the send lag (ms): high, and the generator was late, not the system (null: the model does not measure it). */
  readonly sendLagP99: number | null;
}

/** Every count of a run's load, from its records alone: the one place they are counted. */
export function loadFigures(records: readonly LoadRecord[], run: LoadRun): LoadFigures {
  const counts: Record<LoadOutcome, number> = { ok: 0, failed: 0, cut: 0, missed: 0 };
  for (const r of records) counts[outcomeOf(r)]++;
  const sent = counts.ok + counts.failed + counts.cut;
  const lags = records.flatMap((r) => (r.lagMs === undefined ? [] : [r.lagMs])).sort((a, b) => a - b);
  const sendLagP99 = lags.length ? percentile(lags, 99) : null;
  return { model: run.model, rate: run.rate, achieved: sent / Math.max(0.001, (run.to - run.from) / 1000), sent, maxInFlight: run.maxInFlight, sendLagP99, ...counts };
}

/** One line of figures, as the summary and the text reports print it. */
export function describeLoad(f: LoadFigures): string {
  const cap = f.maxInFlight === null ? '' : `, at most ${f.maxInFlight} in flight`;
  return `${f.model}-model load at ${f.rate}/s (achieved ${f.achieved.toFixed(2)}/s${cap}): ${f.sent} sent, ${f.ok} ok, ${f.failed} failed, ${f.cut} cut by the load's stop, ${f.missed} missed starts${f.sendLagP99 === null ? '' : `; send lag p99 ${f.sendLagP99.toFixed(0)} ms`}`;
}

export const COHORT_VALUE = 'experiment';

export interface LoadTarget {
  /** Base URL the requests go to (the entry sidecar's inbound listener, or the experiment's url). */
  readonly url: string;
  /** Host header: the entry service's name, when load enters through a sidecar. */
  readonly host?: string;
}

/** A load model: sends the experiment's requests to the target for a time, each request's end a record. */
export interface Load {
  /** Sends load for `durationMs`; resolves when it is over (or stopped) and no request of it is left. */
  run(experiment: Experiment, target: LoadTarget, durationMs: number, record: (r: LoadRecord) => void): Promise<LoadRun>;
  /** Starts no more requests; those in flight are waited for up to the model's bound, then cut. */
  stop(): void;
}
