// A sidecar's telemetry outside the request path: its metrics and what their gauges read at scrape
// time, the tracer its hop spans go to, the access log, and the log lines of the mesh's decisions.
import type { MeshConfig } from '../config/schema.ts';
import type { SidecarSpec, Snapshot } from '../config/snapshot.ts';
import type { FaultTable } from '../faults/table.ts';
import { openAccessLog, type AccessLog } from '../telemetry/access-log.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';
import { MeshMetrics } from '../telemetry/metrics.ts';
import { MeshTracer } from '../telemetry/tracing.ts';
import type { Breakers } from './breaker/registry.ts';
import type { Clusters } from './endpoints.ts';
import type { RetryBudgets } from './retry-budget.ts';

/** The sidecar's state that the gauges read, at scrape time. */
export interface SidecarState {
  readonly snapshot: Snapshot;
  readonly clusters: Clusters;
  readonly breakers: Breakers;
  readonly faults: FaultTable;
}

export interface SidecarTelemetryOptions {
  readonly spec: SidecarSpec;
  /** The config's telemetry when the sidecar started; a reload does not change it. */
  readonly config: MeshConfig['telemetry'];
  /** Write an access log line per request to this file, or to stdout with '-'. */
  readonly accessLog: string | undefined;
  readonly log: Logger;
}

export class SidecarTelemetry {
  readonly metrics: MeshMetrics;
  /** Set when tracing is on. */
  readonly tracer: MeshTracer | undefined;
  readonly #accessLog: AccessLog | undefined;

  constructor(events: EventBus, options: SidecarTelemetryOptions, state: SidecarState, retryBudgets: RetryBudgets) {
    const { spec, config, log } = options;
    this.#accessLog = options.accessLog ? openAccessLog(events, options.accessLog) : undefined;
    this.tracer = config.enabled && config.tracing ? new MeshTracer(spec.service, spec.name, config.tracing) : undefined;
    this.metrics = new MeshMetrics(events, spec.service, {
      endpoints: () => [...state.clusters.values()].flatMap((c) =>
        c.endpoints.map((e) => ({ service: c.name, endpoint: e.address, healthy: e.health.status !== 'unhealthy', ejected: e.outlier.ejected }))),
      breakers: () => state.breakers.all().map((b) => ({ service: b.service, subset: b.subset, state: b.state })),
      retryBudgets: () => [...retryBudgets.entries()].map(([route, budget]) => ({ route, remaining: budget.totals().remaining })),
      configVersion: () => state.snapshot.version,
      faults: () => state.faults.all().map((f) => ({ id: f.id, action: f.actionName, origin: f.origin })),
    });
    events.on('health.changed', (e) => log.info(e, `endpoint ${e.healthy ? 'healthy' : 'unhealthy'}`));
    events.on('outlier.ejected', (e) => log.warn(e, 'endpoint ejected'));
    events.on('outlier.restored', (e) => log.info(e, 'endpoint restored'));
    events.on('breaker.state', (e) => log.warn(e, `circuit ${e.to}`));
  }

  async close(): Promise<void> {
    this.metrics.close();
    await this.#accessLog?.close();
    await this.tracer?.close();
  }
}
