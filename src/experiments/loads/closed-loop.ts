// A closed-loop load (`load.model: closed`): autocannon at a fixed total rate over a fixed number of
// connections, bounded by time, with the experiment's request mix (weights as repetitions in the
// sequence each connection cycles through). Each connection waits for its response before the next
// request, so a slow system gets fewer requests and latency is timed from the actual send: good for
// benchmarks, not for verdicts under a latency fault (the open model is the default for that). With a
// cohort, two generators run side by side — the experiment cohort, whose requests carry the cohort
// header, and the control group — so every response is known to belong to one.
import autocannon from 'autocannon';
import { COHORT_VALUE, type Load, type LoadRecord, type LoadRun, type LoadTarget } from '../load.ts';
import type { Experiment } from '../spec.ts';

export class ClosedLoopLoad implements Load {
  readonly #instances: autocannon.Instance[] = [];
  #stopped = false;
  #stoppedAt: number | undefined;

  async run(experiment: Experiment, target: LoadTarget, durationMs: number, record: (r: LoadRecord) => void): Promise<LoadRun> {
    const { load } = experiment;
    const from = Date.now();
    const mix = load.requests.flatMap((r) => Array.from({ length: r.weight }, () => r));
    const groups: { cohort: LoadRecord['cohort']; share: number; headers: Record<string, string> }[] = load.cohort
      ? [
          { cohort: 'experiment', share: load.cohort.percent / 100, headers: { [load.cohort.header]: COHORT_VALUE } },
          { cohort: 'control', share: 1 - load.cohort.percent / 100, headers: {} },
        ]
      : [{ cohort: 'all', share: 1, headers: {} }];
    await Promise.all(groups.map((group) => new Promise<void>((resolve, reject) => {
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
      // Requests in flight when autocannon stops are dropped unrecorded: at the entry they show as DC
      // after the load's end, which the analysis leaves out.
      instance.on('reqError', () => record({ t: Date.now(), latencyMs: 0, status: 0, cohort: group.cohort }));
      this.#instances.push(instance);
    })));
    return { model: 'closed', rate: load.rate, maxInFlight: null, from, to: this.#stoppedAt ?? Date.now() };
  }

  stop(): void {
    this.#stopped = true;
    this.#stoppedAt ??= Date.now();
    for (const instance of this.#instances) instance.stop();
  }
}
