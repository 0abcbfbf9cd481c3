// Runtime state of every endpoint a sidecar balances over. It outlives snapshots: an endpoint that stays
// in the config keeps its health, ejection and load across reloads. Each part has one owner:
// `health` the HealthChecker, `outlier` the OutlierDetector, `load` the balance layer.
import type { EndpointSpec, ServiceSpec, Snapshot } from '../config/snapshot.ts';
import { selects } from '../config/references.ts';
import { createBalancer, type Balancer } from './balancer/index.ts';

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';

export class HealthState {
  status: HealthStatus = 'unknown';
  consecutiveSuccesses = 0;
  consecutiveFailures = 0;
  /** Whether a check ever passed: until one does, a single pass is enough to bring it in (as Envoy's startup rule). */
  everPassed = false;
  lastCheckedAt: number | undefined;
  lastError: string | undefined;
}

export class OutlierState {
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far; the ejection time grows with it and it decays while the endpoint behaves. */
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  ejectedInInterval = false;
}

export class LoadState {
  active = 0;
  /** Peak-EWMA of response-header latency, in ms; starts at a default as Linkerd's does. */
  ewmaMs = 30;
  ewmaStampMs = 0;

  recordLatency(ms: number, now: number, decayMs: number): void {
    if (ms > this.ewmaMs) {
      this.ewmaMs = ms;
    } else {
      const weight = Math.exp(-Math.max(0, now - this.ewmaStampMs) / decayMs);
      this.ewmaMs = this.ewmaMs * weight + ms * (1 - weight);
    }
    this.ewmaStampMs = now;
  }
}

export class EndpointState {
  spec: EndpointSpec;
  readonly health = new HealthState();
  readonly outlier = new OutlierState();
  readonly load = new LoadState();

  constructor(spec: EndpointSpec) {
    this.spec = spec;
  }

  get address(): string {
    return this.spec.address;
  }

  /** Eligible for traffic: not failed by health checks and not ejected. */
  get available(): boolean {
    return this.health.status !== 'unhealthy' && !this.outlier.ejected;
  }
}

/** One service's endpoints as of a snapshot, with its balancer and pre-computed subsets. */
export class Cluster {
  readonly spec: ServiceSpec;
  readonly endpoints: readonly EndpointState[];
  readonly balancer: Balancer;
  readonly #subsets = new Map<string, readonly EndpointState[]>();

  constructor(spec: ServiceSpec, endpoints: readonly EndpointState[]) {
    this.spec = spec;
    this.endpoints = endpoints;
    this.balancer = createBalancer(spec.loadBalancer);
    this.#subsets.set('', endpoints);
  }

  get name(): string {
    return this.spec.name;
  }

  subset(key: string, labels: Readonly<Record<string, string>> | undefined): readonly EndpointState[] {
    let members = this.#subsets.get(key);
    if (!members) {
      members = this.endpoints.filter((e) => !labels || selects(labels, e.spec.labels));
      this.#subsets.set(key, members);
    }
    return members;
  }
}

export type Clusters = ReadonlyMap<string, Cluster>;

/** Keeps EndpointState objects by (service, address) so that state survives reloads. */
export class EndpointRegistry {
  #states = new Map<string, EndpointState>();

  reconcile(snapshot: Snapshot): Clusters {
    const next = new Map<string, EndpointState>();
    const clusters = new Map<string, Cluster>();
    for (const service of snapshot.services.values()) {
      const endpoints = service.endpoints.map((spec) => {
        const key = `${spec.service}/${spec.address}`;
        const state = this.#states.get(key) ?? new EndpointState(spec);
        state.spec = spec;
        next.set(key, state);
        return state;
      });
      clusters.set(service.name, new Cluster(service, endpoints));
    }
    this.#states = next;
    return clusters;
  }
}
