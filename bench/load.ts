// Load on one target with autocannon: a warm-up, the maximum throughput at a fixed number of
// connections, then latency at a fixed request rate. Latency percentiles are computed here from each
// response's time (autocannon's own histogram has 1 ms resolution, too coarse for a proxy's cost).
import autocannon from 'autocannon';
import { percentile } from '../src/measures.ts';

export interface Target {
  readonly name: string;
  readonly url: string;
  readonly host?: string;
  /** Sidecar processes on the path, whose memory is reported. */
  readonly sidecars: readonly number[];
}

export interface LoadSettings {
  warmupS: number;
  maxS: number;
  rateS: number;
  rate: number;
  maxConnections: number;
  rateConnections: number;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface Measurement {
  name: string;
  maxRps: number;
  failures: number;
  latency: Latency;
  achievedRps: number;
  /** Per sidecar on the path: RSS after the fixed-rate phase, and the peak after the max phase. */
  rss: { atRate: number; peak: number }[];
}

/** One autocannon run against `url` (as `host`, when given); each response's time goes into `times` when given. */
export function run(url: string, host: string | undefined, options: Partial<autocannon.Options>, times?: number[]): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, headers: host ? { host } : {}, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
    if (times) instance.on('response', (_client, _status, _bytes, responseTime: number) => times.push(responseTime));
  });
}

export function percentiles(times: number[]): Latency {
  const sorted = Float64Array.from(times).sort();
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** Warm-up and the fixed rate first, so the memory read after them is the memory at that rate; then the max. */
export async function measure(target: Target, s: LoadSettings, afterRate: () => void): Promise<Omit<Measurement, 'rss'>> {
  await run(target.url, target.host, { connections: s.rateConnections, duration: s.warmupS, overallRate: s.rate });
  const times: number[] = [];
  const fixed = await run(target.url, target.host, { connections: s.rateConnections, duration: s.rateS, overallRate: s.rate }, times);
  afterRate();
  const max = await run(target.url, target.host, { connections: s.maxConnections, duration: s.maxS });
  const failures = (r: autocannon.Result) => r.errors + r.timeouts + r.non2xx;
  return {
    name: target.name,
    maxRps: max.requests.average,
    failures: failures(max) + failures(fixed),
    latency: percentiles(times),
    achievedRps: fixed.requests.average,
  };
}
