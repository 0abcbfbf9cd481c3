// Passive outlier detection, per endpoint, as Envoy's: consecutive 5xx (or gateway errors: 502, 503,
// 504, connect failures, resets, timeouts) eject an endpoint at once for baseEjectionTime × the number of
// times it was ejected (capped by maxEjectionTime), never more than maxEjectionPercent of a service
// (but always one). Every `interval` a sweep returns endpoints whose time is up and lets the ejection
// count of well-behaved endpoints decay.
import type { OutlierDetectionConfig } from '../config/schema.ts';
import { MeshError, ResponseFlag } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Cluster, Clusters } from './endpoints.ts';
import type { Layer } from '../http/types.ts';

/** What one upstream attempt came to, as far as outlier detection cares. */
export type Outcome = { status: number } | { localFailure: 'connect-failure' | 'reset' | 'timeout' };

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
    const gateway = 'localFailure' in outcome || [502, 503, 504].includes(outcome.status);
    const serverError = gateway || ('status' in outcome && outcome.status >= 500);
    if (!serverError) {
      state.consecutive5xx = 0;
      state.consecutiveGatewayErrors = 0;
      return;
    }
    state.consecutive5xx++;
    if (gateway) state.consecutiveGatewayErrors++;
    if (state.ejected) return;
    if (state.consecutive5xx >= config.consecutive5xx) {
      this.#eject(cluster, endpoint, config, `${state.consecutive5xx} consecutive 5xx`);
    } else if (config.consecutiveGatewayErrors !== undefined && state.consecutiveGatewayErrors >= config.consecutiveGatewayErrors) {
      this.#eject(cluster, endpoint, config, `${state.consecutiveGatewayErrors} consecutive gateway errors`);
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

  /** Returns endpoints whose ejection is over; decays the count of those not ejected this interval. */
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
  }

  close(): void {
    for (const sweep of this.#sweeps.values()) clearInterval(sweep.timer);
    this.#sweeps.clear();
  }

  #eject(cluster: Cluster, endpoint: EndpointState, config: OutlierDetectionConfig, reason: string): void {
    const ejected = cluster.endpoints.filter((e) => e.outlier.ejected).length;
    if (ejected > 0 && (ejected + 1) * 100 > cluster.endpoints.length * config.maxEjectionPercent) return;
    const state = endpoint.outlier;
    state.ejections++;
    const durationMs = Math.min(config.baseEjectionTime * state.ejections, Math.max(config.baseEjectionTime, config.maxEjectionTime));
    state.ejected = true;
    state.ejectedUntil = this.#now() + durationMs;
    state.ejectedInInterval = true;
    this.#events.emit('outlier.ejected', {
      service: cluster.name,
      endpoint: endpoint.address,
      ejections: state.ejections,
      durationMs,
      reason,
    });
  }
}

/** Feeds every attempt's outcome to the detector. */
export function outlier(detector: OutlierDetector, clusters: Clusters): Layer {
  return (next) => async (ctx) => {
    const cluster = clusters.get(ctx.destination!.service)!;
    try {
      const response = await next(ctx);
      detector.record(cluster, ctx.endpoint!, { status: response.status });
      return response;
    } catch (error) {
      if (error instanceof MeshError && GATEWAY_FLAGS.has(error.flag)) {
        const kind = error.flag === ResponseFlag.UpstreamConnectFailure ? 'connect-failure'
          : error.flag === ResponseFlag.UpstreamRequestTimeout ? 'timeout' : 'reset';
        detector.record(cluster, ctx.endpoint!, { localFailure: kind });
      }
      throw error;
    }
  };
}
