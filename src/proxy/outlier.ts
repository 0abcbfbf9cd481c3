// Passive outlier detection, per endpoint, as Envoy's: consecutive 5xx (or gateway errors: 502, 503,
// 504, connect failures, resets, timeouts; a gRPC status in the head counts as Envoy maps it:
// UNAVAILABLE a 503, DEADLINE_EXCEEDED a 504, INTERNAL a 500, src/http/grpc.ts) eject an endpoint at once; and at each `interval` the
// interval detectors judge the tries of that interval — failure percentage (outlier/failure-percentage.ts)
// and latency against the siblings' (outlier/latency.ts). An ejection lasts baseEjectionTime × the
// number of times the endpoint was ejected (capped by maxEjectionTime), never more than
// maxEjectionPercent of a service (but always one). Every sweep returns endpoints whose time is up and
// lets the ejection count of well-behaved endpoints decay.
import { performance } from 'node:perf_hooks';
import type { OutlierDetectionConfig } from '../config/schema.ts';
import { MeshError, ResponseFlag } from '../errors.ts';
import { judgedStatus } from '../http/grpc.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Cluster, Clusters } from './endpoints.ts';
import type { Layer } from '../http/types.ts';
import { failurePercentageOutliers } from './outlier/failure-percentage.ts';
import { latencyOutliers } from './outlier/latency.ts';
import type { OutlierVerdict } from './outlier/verdict.ts';

/** What one upstream attempt came to, as far as outlier detection cares; latency to response headers (or to the timeout). */
export type Outcome = ({ status: number } | { localFailure: 'connect-failure' | 'reset' | 'timeout' }) & { latencyMs?: number };

const GATEWAY_FLAGS = new Set<string>([
  ResponseFlag.UpstreamConnectFailure,
  ResponseFlag.UpstreamConnectionTermination,
  ResponseFlag.UpstreamRequestTimeout,
]);

export class OutlierDetector {
  readonly #events: EventBus;
  readonly #now: () => number;
  readonly #sweeps = new Map<string, { interval: number; timer: NodeJS.Timeout }>();
  #clusters: Clusters = new Map();

  constructor(events: EventBus, now: () => number = Date.now) {
    this.#events = events;
    this.#now = now;
  }

  record(cluster: Cluster, endpoint: EndpointState, outcome: Outcome): void {
    const config = cluster.spec.outlierDetection;
    if (!config) return;
    const state = endpoint.outlier;
    const gateway = 'localFailure' in outcome || outcome.status === 502 || outcome.status === 503 || outcome.status === 504;
    const serverError = gateway || ('status' in outcome && outcome.status >= 500);
    if (config.failurePercentage || config.latency) state.interval.record(serverError, config.latency ? outcome.latencyMs : undefined);
    if (!serverError) {
      state.consecutive5xx = 0;
      state.consecutiveGatewayErrors = 0;
      return;
    }
    state.consecutive5xx++;
    if (gateway) state.consecutiveGatewayErrors++;
    if (state.ejected) return;
    if (state.consecutive5xx >= config.consecutive5xx) {
      this.#eject(cluster, config, { endpoint, detector: 'consecutive-5xx', reason: `${state.consecutive5xx} consecutive 5xx`, figures: { consecutive: state.consecutive5xx } });
    } else if (config.consecutiveGatewayErrors !== undefined && state.consecutiveGatewayErrors >= config.consecutiveGatewayErrors) {
      this.#eject(cluster, config, {
        endpoint,
        detector: 'consecutive-gateway-errors',
        reason: `${state.consecutiveGatewayErrors} consecutive gateway errors`,
        figures: { consecutive: state.consecutiveGatewayErrors },
      });
    }
  }

  /** Starts, re-times or stops the sweep of each service to match the snapshot. */
  sync(clusters: Clusters): void {
    for (const [name, sweep] of this.#sweeps) {
      const interval = clusters.get(name)?.spec.outlierDetection?.interval;
      if (interval !== sweep.interval) {
        clearInterval(sweep.timer);
        this.#sweeps.delete(name);
      }
    }
    for (const cluster of clusters.values()) {
      const config = cluster.spec.outlierDetection;
      if (!config || this.#sweeps.has(cluster.name)) continue;
      const timer = setInterval(() => this.sweep(cluster.name), config.interval).unref();
      this.#sweeps.set(cluster.name, { interval: config.interval, timer });
    }
    this.#clusters = clusters;
  }

  /**
   * Returns endpoints whose ejection is over; decays the count of those not ejected this interval;
   * then the interval detectors judge this interval's tries, and the next interval starts.
   */
  sweep(service: string): void {
    const cluster = this.#clusters.get(service);
    if (!cluster) return;
    const now = this.#now();
    for (const endpoint of cluster.endpoints) {
      const state = endpoint.outlier;
      if (state.ejected && now >= state.ejectedUntil) {
        state.ejected = false;
        state.consecutive5xx = 0;
        state.consecutiveGatewayErrors = 0;
        this.#events.emit('outlier.restored', { service, endpoint: endpoint.address });
      } else if (!state.ejected && !state.ejectedInInterval && state.ejections > 0) {
        state.ejections--;
      }
      state.ejectedInInterval = false;
    }
    const config = cluster.spec.outlierDetection;
    if (config && (config.failurePercentage || config.latency)) {
      const judged = cluster.endpoints.filter((e) => !e.outlier.ejected);
      const verdicts = [
        ...(config.failurePercentage ? failurePercentageOutliers(config.failurePercentage, judged) : []),
        ...(config.latency ? latencyOutliers(config.latency, judged) : []),
      ];
      for (const verdict of verdicts) if (!verdict.endpoint.outlier.ejected) this.#eject(cluster, config, verdict);
    }
    for (const endpoint of cluster.endpoints) endpoint.outlier.interval.reset();
  }

  close(): void {
    for (const sweep of this.#sweeps.values()) clearInterval(sweep.timer);
    this.#sweeps.clear();
  }

  #eject(cluster: Cluster, config: OutlierDetectionConfig, verdict: OutlierVerdict): void {
    const ejected = cluster.endpoints.filter((e) => e.outlier.ejected).length;
    if (ejected > 0 && (ejected + 1) * 100 > cluster.endpoints.length * config.maxEjectionPercent) return;
    const state = verdict.endpoint.outlier;
    state.ejections++;
    const durationMs = Math.min(config.baseEjectionTime * state.ejections, Math.max(config.baseEjectionTime, config.maxEjectionTime));
    state.ejected = true;
    state.ejectedUntil = this.#now() + durationMs;
    state.ejectedInInterval = true;
    this.#events.emit('outlier.ejected', {
      service: cluster.name,
      endpoint: verdict.endpoint.address,
      ejections: state.ejections,
      durationMs,
      reason: verdict.reason,
      detector: verdict.detector,
      figures: verdict.figures,
    });
  }
}

/** Feeds every attempt's outcome, and its time to response headers, to the detector. */
export function outlier(detector: OutlierDetector, clusters: Clusters): Layer {
  return (next) => async (ctx) => {
    const cluster = clusters.get(ctx.destination!.service)!;
    // Timed only for the latency detector: two clock reads per try saved everywhere else.
    const started = cluster.spec.outlierDetection?.latency ? performance.now() : undefined;
    try {
      const response = await next(ctx);
      detector.record(cluster, ctx.endpoint!, { status: judgedStatus(response), latencyMs: started === undefined ? undefined : performance.now() - started });
      return response;
    } catch (error) {
      if (error instanceof MeshError && GATEWAY_FLAGS.has(error.flag)) {
        const kind = error.flag === ResponseFlag.UpstreamConnectFailure ? 'connect-failure'
          : error.flag === ResponseFlag.UpstreamRequestTimeout ? 'timeout' : 'reset';
        detector.record(cluster, ctx.endpoint!, { localFailure: kind, ...(kind === 'timeout' && started !== undefined && { latencyMs: performance.now() - started }) });
      }
      throw error;
    }
  };
}
