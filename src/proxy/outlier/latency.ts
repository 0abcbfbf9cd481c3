// Latency ejection (beyond Envoy, whose envoy#288 asked for it in 2016): at each interval, an endpoint
// whose latency percentile over the interval is above factor × the median of its siblings' same
// percentile, and above an absolute minimum, is ejected. Judged are the endpoints with requestVolume
// timed tries, and only when minimumHosts of them had it. The latency is to response headers; a try
// cut by a timeout counts at the time it was cut, so a hanging endpoint is slow, not unseen. Siblings
// exclude the endpoint itself, so one slow endpoint of three is judged against the two others.
import type { OutlierDetectionConfig } from '../../config/resources.ts';
import type { EndpointState } from '../../http/endpoint-state.ts';
import { percentile } from '../../measures.ts';
import type { OutlierVerdict } from './verdict.ts';

type Config = NonNullable<OutlierDetectionConfig['latency']>;

/** The endpoints to eject this interval; `endpoints` are those not ejected already. */
export function latencyOutliers(config: Config, endpoints: readonly EndpointState[]): OutlierVerdict[] {
  const judged = endpoints
    .filter((e) => e.outlier.interval.timed >= config.requestVolume)
    .map((endpoint) => ({ endpoint, value: percentile([...endpoint.outlier.interval.latencies].sort((a, b) => a - b), config.percentile) }));
  if (judged.length < config.minimumHosts) return [];
  const p = `p${config.percentile}`;
  const verdicts: OutlierVerdict[] = [];
  for (const { endpoint, value } of judged) {
    const siblings = judged.filter((j) => j.endpoint !== endpoint).map((j) => j.value).sort((a, b) => a - b);
    const median = siblings.length % 2 === 1 ? siblings[(siblings.length - 1) / 2]! : (siblings[siblings.length / 2 - 1]! + siblings[siblings.length / 2]!) / 2;
    const bound = Math.max(config.factor * median, config.minimum);
    if (value <= bound) continue;
    verdicts.push({
      endpoint,
      detector: 'latency',
      reason: `${p} ${ms(value)} over ${endpoint.outlier.interval.timed} tries > ${config.factor} × the siblings' median ${p} ${ms(median)} (and > minimum ${ms(config.minimum)})`,
      figures: {
        percentile: config.percentile,
        latencyMs: +value.toFixed(1),
        siblingsMedianMs: +median.toFixed(1),
        factor: config.factor,
        minimumMs: config.minimum,
        requests: endpoint.outlier.interval.timed,
        hostsJudged: judged.length,
      },
    });
  }
  return verdicts;
}

const ms = (value: number) => `${+value.toFixed(1)} ms`;
