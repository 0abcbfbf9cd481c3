// Failure-percentage ejection, as Envoy's: at each interval, every endpoint with at least requestVolume
// tries is compared with a fixed threshold (not with its siblings), but only when at least minimumHosts
// endpoints had that volume. Failures are 5xx answers and the mesh's own failures to get one (connect
// failures, resets, timeouts: Envoy counts these only when told to). Enforced whenever configured
// (Envoy's enforcing_failure_percentage defaults to 0, the usual reason it "never fires").
import type { OutlierDetectionConfig } from '../../config/resources.ts';
import type { EndpointState } from '../../http/endpoint-state.ts';
import type { OutlierVerdict } from './verdict.ts';

type Config = NonNullable<OutlierDetectionConfig['failurePercentage']>;

/** The endpoints to eject this interval; `endpoints` are those not ejected already. */
export function failurePercentageOutliers(config: Config, endpoints: readonly EndpointState[]): OutlierVerdict[] {
  const judged = endpoints.filter((e) => e.outlier.interval.requests >= config.requestVolume);
  if (judged.length < config.minimumHosts) return [];
  const verdicts: OutlierVerdict[] = [];
  for (const endpoint of judged) {
    const { requests, failures } = endpoint.outlier.interval;
    const percent = (failures * 100) / requests;
    if (percent < config.threshold) continue;
    verdicts.push({
      endpoint,
      detector: 'failure-percentage',
      reason: `${+percent.toFixed(1)} % of ${requests} tries failed in the interval (threshold ${config.threshold} %, ${judged.length} endpoints judged)`,
      figures: { requests, failures, failurePercent: +percent.toFixed(2), threshold: config.threshold, hostsJudged: judged.length },
    });
  }
  return verdicts;
}
