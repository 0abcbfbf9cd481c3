// The game day's load: autocannon at a fixed total rate, bounded by time, with the experiment's request
// mix (weights as repetitions in the sequence each connection cycles through). With a cohort, two
// generators run side by side — the experiment cohort, whose requests carry the cohort header, and the
// control group — so every response is known to belong to one. Every response becomes a record.
import autocannon from 'autocannon';
import type { Experiment } from './spec.ts';

export interface LoadRecord {
  /** Epoch milliseconds when the response (or the error) came. */
  readonly t: number;
  readonly latencyMs: number;
  /** 0 for an error or a timeout (no response). */
  readonly status: number;
  readonly cohort: 'experiment' | 'control' | 'all';
}

export const COHORT_VALUE = 'experiment';

export interface LoadTarget {
  /** Base URL the requests go to (the entry sidecar's inbound listener, or the experiment's url). */
  readonly url: string;
  /** Host header: the entry service's name, when load enters through a sidecar. */
  readonly host?: string;
}

export class LoadGenerator {
  readonly #instances: autocannon.Instance[] = [];
  #stopped = false;

  /** Sends load for `durationMs`; resolves when it is over (or stopped). */
  run(experiment: Experiment, target: LoadTarget, durationMs: number, record: (r: LoadRecord) => void): Promise<void> {
    const { load } = experiment;
    const mix = load.requests.flatMap((r) => Array.from({ length: r.weight }, () => r));
    const groups: { cohort: LoadRecord['cohort']; share: number; headers: Record<string, string> }[] = load.cohort
      ? [
          { cohort: 'experiment', share: load.cohort.percent / 100, headers: { [load.cohort.header]: COHORT_VALUE } },
          { cohort: 'control', share: 1 - load.cohort.percent / 100, headers: {} },
        ]
      : [{ cohort: 'all', share: 1, headers: {} }];
    return Promise.all(groups.map((group) => new Promise<void>((resolve, reject) => {
      if (this.#stopped) return resolve();
      const instance = autocannon(
        {
          url: target.url,
          connections: Math.max(1, Math.round(load.connections * group.share)),
          overallRate: Math.max(1, load.rate * group.share),
          duration: durationMs / 1000,
          timeout: 10,
          headers: { ...(target.host && { host: target.host }), ...group.headers },
          requests: mix.map((r) => ({ method: r.method as autocannon.Request['method'], path: r.path, headers: { ...(target.host && { host: target.host }), ...r.headers, ...group.headers }, ...(r.body !== undefined && { body: r.body }) })),
        },
        (error) => (error ? reject(error) : resolve()),
      );
      instance.on('response', (_client, statusCode, _bytes, responseTime) => record({ t: Date.now(), latencyMs: responseTime, status: statusCode, cohort: group.cohort }));
      instance.on('reqError', () => record({ t: Date.now(), latencyMs: 0, status: 0, cohort: group.cohort }));
      this.#instances.push(instance);
    }))).then(() => undefined);
  }

  stop(): void {
    this.#stopped = true;
    for (const instance of this.#instances) instance.stop();
  }
}
