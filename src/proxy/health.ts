// Active health checks: every `interval`, GET the check path of each endpoint (through the sidecar
// fronting it, as traffic goes). `unhealthyThreshold` failures in a row take an endpoint out of the
// pool, `healthyThreshold` passes bring it back. The first result decides at once, so an endpoint
// that is down at start does not take traffic while failures add up; and until an endpoint has passed
// once, one pass brings it in (as Envoy's), so peers that start together find each other quickly.
import { Agent, request, type Dispatcher } from '../http/undici.ts';
import type { HealthCheckConfig } from '../config/schema.ts';
import { describe } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { ActiveFault } from '../faults/active.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Clusters } from './endpoints.ts';
import { Header } from '../http/headers.ts';

/** The source a health check's request names (x-faultline-source, user-agent): traffic counts leave it out. */
export const HEALTH_CHECK_SOURCE = 'faultline-health-check';

interface Probe {
  readonly config: HealthCheckConfig;
  readonly service: string;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

export class HealthChecker {
  readonly #events: EventBus;
  readonly #agent: Agent;
  readonly #dispatcherFor: ((service: string) => Dispatcher) | undefined;
  readonly #probes = new Map<EndpointState, Probe>();
  readonly #checked = new Set<EndpointState>();
  /** A partition between this sidecar's service and the destination fails its checks, as on a real network. */
  readonly #partition: (destination: string) => ActiveFault | undefined;

  /** `dispatcherFor`: the sidecar's pools, so checks reach peer sidecars over mTLS as its traffic does. */
  constructor(events: EventBus, partition: (destination: string) => ActiveFault | undefined = () => undefined, dispatcherFor?: (service: string) => Dispatcher) {
    this.#agent = new Agent({ keepAliveTimeout: 30_000, connections: 1 });
    this.#dispatcherFor = dispatcherFor;
    this.#events = events;
    this.#partition = partition;
  }

  /** Starts probes for new endpoints, restarts those whose check changed, stops the rest. */
  sync(clusters: Clusters): void {
    const wanted = new Map<EndpointState, { config: HealthCheckConfig; service: string }>();
    for (const cluster of clusters.values()) {
      const config = cluster.spec.healthCheck;
      if (config) for (const endpoint of cluster.endpoints) wanted.set(endpoint, { config, service: cluster.name });
    }
    for (const [endpoint, probe] of this.#probes) {
      const want = wanted.get(endpoint);
      if (!want || JSON.stringify(want.config) !== JSON.stringify(probe.config)) this.#stop(endpoint, probe);
    }
    for (const [endpoint, want] of wanted) {
      if (this.#probes.has(endpoint)) continue;
      const probe: Probe = { ...want, timer: undefined, stopped: false };
      this.#probes.set(endpoint, probe);
      void this.#run(endpoint, probe);
    }
  }

  /** True once every probed endpoint has had its first result. */
  get settled(): boolean {
    for (const endpoint of this.#probes.keys()) if (!this.#checked.has(endpoint)) return false;
    return true;
  }

  async close(): Promise<void> {
    for (const [endpoint, probe] of this.#probes) this.#stop(endpoint, probe);
    await this.#agent.close();
  }

  #stop(endpoint: EndpointState, probe: Probe): void {
    probe.stopped = true;
    clearTimeout(probe.timer);
    this.#probes.delete(endpoint);
    this.#checked.delete(endpoint);
    endpoint.health.status = 'unknown';
  }

  async #run(endpoint: EndpointState, probe: Probe): Promise<void> {
    const failure = await this.#check(endpoint, probe);
    if (probe.stopped) return;
    this.#apply(endpoint, probe.service, probe.config, failure);
    this.#checked.add(endpoint);
    probe.timer = setTimeout(() => void this.#run(endpoint, probe), probe.config.interval).unref();
  }

  /** Undefined when the check passed, else why it failed. */
  async #check(endpoint: EndpointState, probe: Probe): Promise<string | undefined> {
    const { config } = probe;
    const partition = this.#partition(probe.service);
    if (partition) return this.#partitioned(partition, probe, endpoint);
    try {
      const response = await request(`http://${endpoint.spec.dial}${config.path}`, {
        dispatcher: this.#dispatcherFor?.(probe.service) ?? this.#agent,
        headers: { host: probe.service, 'user-agent': HEALTH_CHECK_SOURCE, [Header.source]: HEALTH_CHECK_SOURCE },
        signal: AbortSignal.timeout(config.timeout),
      });
      await response.body.dump();
      const ok = config.expectedStatuses
        ? config.expectedStatuses.includes(response.statusCode)
        : response.statusCode >= 200 && response.statusCode < 300;
      return ok ? undefined : `status ${response.statusCode}`;
    } catch (error) {
      return error instanceof DOMException && error.name === 'TimeoutError' ? `timed out after ${config.timeout}ms` : describe(error);
    }
  }

  /** A check across a partition: refused at once, or (blackhole) no answer until the check's timeout. */
  async #partitioned(fault: ActiveFault, probe: Probe, endpoint: EndpointState): Promise<string> {
    const mode = fault.spec.partition!.mode;
    this.#events.emit('fault.applied', {
      faultId: fault.id,
      action: 'partition',
      point: 'health-check',
      ordinal: 0,
      requestId: null,
      traceId: null,
      attempt: 0,
      source: 'health-check',
      destination: probe.service,
      endpoint: endpoint.address,
      details: { mode, endpoint: endpoint.address },
    });
    if (mode === 'reject') return `connection refused (partition "${fault.id}")`;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve();
      }, probe.config.timeout);
      const off = fault.removed.onCancel(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return fault.removed.cancelled ? `partition "${fault.id}" removed during the check` : `timed out after ${probe.config.timeout}ms (partition "${fault.id}")`;
  }

  #apply(endpoint: EndpointState, service: string, config: HealthCheckConfig, failure: string | undefined): void {
    const health = endpoint.health;
    health.lastCheckedAt = Date.now();
    health.lastError = failure;
    if (failure === undefined) {
      health.consecutiveSuccesses++;
      health.consecutiveFailures = 0;
    } else {
      health.consecutiveFailures++;
      health.consecutiveSuccesses = 0;
    }
    const before = health.status;
    const enoughPasses = !health.everPassed || health.consecutiveSuccesses >= config.healthyThreshold;
    if (failure === undefined) health.everPassed = true;
    if (failure === undefined && (before === 'unknown' || (before === 'unhealthy' && enoughPasses))) {
      health.status = 'healthy';
    } else if (failure !== undefined && (before === 'unknown' || (before === 'healthy' && health.consecutiveFailures >= config.unhealthyThreshold))) {
      health.status = 'unhealthy';
    }
    // From unknown, only a failure is news: unknown already counts as available.
    const changed = before === 'unknown' ? health.status === 'unhealthy' : health.status !== before;
    if (changed) {
      this.#events.emit('health.changed', {
        service,
        endpoint: endpoint.address,
        healthy: health.status === 'healthy',
        reason: failure ?? `${health.consecutiveSuccesses} checks passed`,
      });
    }
  }
}
