// The runtime state of one upstream endpoint: what a request records as the endpoint it went to, and
// what the data plane keeps on it across snapshots. Each part has one owner: `health` the
// HealthChecker, `outlier` the OutlierDetector, `load` the balance layer; balancers only read it.
import type { EndpointSpec } from '../config/specs.ts';

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
