// An open-model load (k6's constant-arrival-rate, wrk2's schedule): requests start on schedule whatever
// the responses do, each timed from its intended start, over an undici pool with a connection for every
// request the in-flight cap allows, so nothing waits unseen inside the client. A start that finds the
// cap reached is a missed start, recorded and never sent later. At the end, requests still in flight
// are awaited up to a bound; the ones left then are cut by the load, and recorded as such.
import { randomUUID } from 'node:crypto';
import { Pool, type Dispatcher } from 'undici';
import { Header } from '../../http/headers.ts';
import { COHORT_VALUE, type Load, type LoadRecord, type LoadRun, type LoadTarget } from '../load.ts';
import { systemClock, type Clock } from '../../clock.ts';
import type { Experiment } from '../spec.ts';
import { Arrivals } from './arrivals.ts';

/** A request with no answer after this is a client timeout (a failure); longer than any route's budget in the bundled meshes. */
export const CLIENT_TIMEOUT_MS = 10_000;
/** The default cap: every request that could be in flight at the rate until the client timeout, within reason for one machine. */
export function defaultMaxInFlight(rate: number): number {
  return Math.min(1_000, Math.ceil((rate * CLIENT_TIMEOUT_MS) / 1000));
}

export interface OpenModelOptions {
  readonly clock?: Clock;
  readonly timeoutMs?: number;
  /** How long requests still in flight at the end are awaited before the load cuts them. */
  readonly drainMs?: number;
}

export class OpenModelLoad implements Load {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #drainMs: number;
  #arrivals: Arrivals | undefined;
  #stopped = false;

  constructor(options: OpenModelOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS;
    this.#drainMs = options.drainMs ?? 3_000;
  }

  async run(experiment: Experiment, target: LoadTarget, durationMs: number, record: (r: LoadRecord) => void): Promise<LoadRun> {
    const { load } = experiment;
    const cap = load.maxInFlight ?? defaultMaxInFlight(load.rate);
    const mix = load.requests.flatMap((r) => Array.from({ length: r.weight }, () => r));
    const url = new URL(target.url);
    const pool = new Pool(url.origin, { connections: cap, pipelining: 1, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs });
    const base = url.pathname.replace(/\/$/, '');
    const prefix = `load-${randomUUID().slice(0, 8)}`;
    const inFlight = new Map<number, { cut: AbortController; done: Promise<void> }>();
    const sentOf = { experiment: 0, control: 0, all: 0 };

    // The cohort's share spread evenly over the schedule: arrival i is in it when the running share
    // passes a whole request there.
    const share = load.cohort ? load.cohort.percent / 100 : 0;
    const start = (index: number, dueAt: number) => {
      const cohort: LoadRecord['cohort'] = !load.cohort ? 'all' : Math.floor((index + 1) * share) > Math.floor(index * share) ? 'experiment' : 'control';
      if (inFlight.size >= cap) return record({ t: dueAt, latencyMs: 0, status: 0, cohort, kind: 'missed' });
      const r = mix[sentOf[cohort]++ % mix.length]!;
      const requestId = `${prefix}-${index}`;
      const headers = { ...(target.host && { host: target.host }), ...r.headers, [Header.requestId]: requestId, ...(cohort === 'experiment' && { [load.cohort!.header]: COHORT_VALUE }) };
      const cut = new AbortController();
      const lagMs = this.#clock.now() - dueAt;
      const end = (status: number, kind?: 'cut') => {
        const t = this.#clock.now();
        record({ t, latencyMs: t - dueAt, status, cohort, requestId, lagMs, ...(kind && { kind }) });
      };
      const done = pool
        .request({ path: `${base}${r.path}`, method: r.method as Dispatcher.HttpMethod, headers, body: r.body ?? null, signal: cut.signal })
        .then(async (response) => {
          await response.body.arrayBuffer(); // consumed, or the connection stays pinned
          end(response.statusCode);
        })
        .catch(() => end(0, cut.signal.aborted ? 'cut' : undefined))
        .finally(() => inFlight.delete(index));
      inFlight.set(index, { cut, done });
    };

    this.#arrivals = new Arrivals(this.#clock, load.rate, durationMs, start);
    const span = this.#stopped ? { from: this.#clock.now(), to: this.#clock.now() } : await this.#arrivals.run();
    await this.#drain(inFlight);
    for (const request of inFlight.values()) request.cut.abort();
    await Promise.all([...inFlight.values()].map((request) => request.done));
    await pool.destroy();
    return { model: 'open', rate: load.rate, maxInFlight: cap, ...span };
  }

  stop(): void {
    this.#stopped = true;
    this.#arrivals?.stop();
  }

  /** Waits until no request is in flight, or the drain bound has passed. */
  async #drain(inFlight: Map<number, { done: Promise<void> }>): Promise<void> {
    let cancel = () => {};
    const bound = new Promise<'over'>((resolve) => (cancel = this.#clock.after(this.#drainMs, () => resolve('over'))));
    while (inFlight.size > 0) if ((await Promise.race([bound, ...[...inFlight.values()].map((r) => r.done)])) === 'over') break;
    cancel();
  }
}
