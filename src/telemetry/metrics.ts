// Prometheus metrics of one sidecar (prom-client, its own registry), served on the admin listener at
// /metrics. Request metrics use Istio's standard names and labels so existing dashboards work;
// faultline's own are under `faultline_`. Counters follow the event stream; gauges are read from the
// sidecar's state at scrape time. Labels are bounded: services, routes, endpoints and flags from the
// config, never request ids or paths.
import { Counter, Gauge, Registry } from 'prom-client';
import { RequestMetrics } from './request-metrics.ts';
import type { EventBus } from './events.ts';

/** What the gauges read at scrape time. */
export interface MetricSources {
  readonly endpoints: () => Iterable<{ service: string; endpoint: string; healthy: boolean; ejected: boolean }>;
  readonly breakers: () => Iterable<{ service: string; subset: string; state: 'closed' | 'open' | 'half-open' }>;
  readonly retryBudgets: () => Iterable<{ route: string; remaining: number }>;
  readonly configVersion: () => string;
  readonly faults: () => Iterable<{ id: string; action: string; origin: string }>;
}

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;

export class MeshMetrics {
  readonly registry = new Registry();
  readonly #unsubscribe: (() => void)[] = [];

  constructor(events: EventBus, service: string, sources: MetricSources) {
    const registry = this.registry;
    const requests = new RequestMetrics(registry);
    const retries = new Counter({ name: 'faultline_retries_total', help: 'Retries made, by route, destination and the condition that caused them', labelNames: ['route', 'destination_service', 'reason'], registers: [registry] });
    const unretried = new Counter({
      name: 'faultline_retries_refused_total',
      help: 'Requests whose due retry was not made, by why: URX (attempts), UBX (budget), RBL (body), UO (breaker)',
      labelNames: ['route', 'destination_service', 'response_flags'],
      registers: [registry],
    });
    const transitions = new Counter({ name: 'faultline_breaker_transitions_total', help: 'Circuit breaker transitions, by the state entered', labelNames: ['destination_service', 'subset', 'to'], registers: [registry] });
    const ejections = new Counter({ name: 'faultline_outlier_ejections_total', help: 'Endpoints ejected by outlier detection', labelNames: ['destination_service', 'endpoint'], registers: [registry] });
    const faultsInjected = new Counter({
      name: 'faultline_faults_injected_total',
      help: 'Faults injected, by fault id, action and injection point (request, attempt, inbound, health-check)',
      labelNames: ['fault_id', 'action', 'point'],
      registers: [registry],
    });
    new Gauge({
      name: 'faultline_fault_active',
      help: 'Faults in force on this sidecar (value 1), by id, action and origin (config or runtime)',
      labelNames: ['fault_id', 'action', 'origin'],
      registers: [registry],
      collect() {
        this.reset();
        for (const f of sources.faults()) this.set({ fault_id: f.id, action: f.action, origin: f.origin }, 1);
      },
    });
    const configApplied = new Counter({ name: 'faultline_config_applied_total', help: 'Config snapshots applied', registers: [registry] });
    new Gauge({
      name: 'faultline_endpoint_healthy',
      help: '1 when the endpoint is available (not failed by health checks, not ejected), else 0',
      labelNames: ['destination_service', 'endpoint'],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of sources.endpoints()) this.set({ destination_service: e.service, endpoint: e.endpoint }, e.healthy && !e.ejected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'faultline_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      labelNames: ['destination_service', 'subset'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of sources.breakers()) this.set({ destination_service: b.service, subset: b.subset }, BREAKER_STATE[b.state]);
      },
    });
    new Gauge({
      name: 'faultline_retry_budget_remaining',
      help: 'Retries the route may still make in the current 10 s window',
      labelNames: ['route'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of sources.retryBudgets()) this.set({ route: b.route }, b.remaining);
      },
    });
    new Gauge({
      name: 'faultline_config_version_info',
      help: 'The config snapshot in force (value 1, version as label)',
      labelNames: ['version'],
      registers: [registry],
      collect() {
        this.reset();
        this.set({ version: sources.configVersion() }, 1);
      },
    });
    new Counter({
      name: 'faultline_events_dropped_total',
      help: 'Events a slow /events reader could not take in time',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(events.dropped);
      },
    });

    const refusals = new Set(['URX', 'UBX', 'RBL', 'UO']);
    this.#unsubscribe.push(
      events.on('request.done', (e) => {
        const outbound = e.direction === 'outbound';
        const flags = e.flags.length === 0 ? '-' : e.flags.length === 1 ? e.flags[0]! : e.flags.join(',');
        requests.record(outbound, e.source, outbound ? (e.service ?? 'unknown') : service, e.status, e.grpcStatus ?? -1, flags, e.durationMs, e.requestBytes, e.responseBytes);
        // Indexed: most requests have no flags, and an iterator over an empty list is still made and run.
        for (let i = 0; i < e.flags.length; i++) {
          const flag = e.flags[i]!;
          if (refusals.has(flag)) unretried.inc({ route: e.route ?? 'none', destination_service: e.service ?? 'unknown', response_flags: flag });
        }
      }),
      events.on('retry.attempt', (e) => retries.inc({ route: e.route, destination_service: e.service, reason: e.reason })),
      events.on('breaker.state', (e) => transitions.inc({ destination_service: e.service, subset: e.subset, to: e.to })),
      events.on('outlier.ejected', (e) => ejections.inc({ destination_service: e.service, endpoint: e.endpoint })),
      events.on('config.applied', () => configApplied.inc()),
      events.on('fault.applied', (e) => faultsInjected.inc({ fault_id: e.faultId, action: e.action, point: e.point })),
    );
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
  }
}

/** Prometheus text → sample name (with labels) → value. */
export function parseSamples(text: string): Record<string, number> {
  const samples: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (Number.isFinite(value)) samples[line.slice(0, space)] = value;
  }
  return samples;
}
