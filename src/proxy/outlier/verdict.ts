// What an outlier detector decides about one endpoint: eject it, why in words, and the numbers behind
// it, which the outlier.ejected event and the reports carry.
import type { EndpointState } from '../../http/endpoint-state.ts';

export type Detector = 'consecutive-5xx' | 'consecutive-gateway-errors' | 'failure-percentage' | 'latency';

export interface OutlierVerdict {
  readonly endpoint: EndpointState;
  readonly detector: Detector;
  readonly reason: string;
  readonly figures: Readonly<Record<string, number>>;
}
