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

/** Latencies an interval keeps per endpoint, at most: beyond, a uniform sample of them (reservoir). */
export const LATENCY_SAMPLES = 1_024;

/** One endpoint's tries in the current outlier interval, for the interval detectors; each sweep resets them. */
export class IntervalStats {
  requests = 0;
  failures = 0;
  /** Latencies seen (ms), of which `latencies` keeps a uniform sample. */
  timed = 0;
  latencies: number[] = [];

  record(failed: boolean, latencyMs: number | undefined): void {
    this.requests++;
    if (failed) this.failures++;
    if (latencyMs === undefined) return;
    this.timed++;
    if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(latencyMs);
    else {
      const slot = Math.floor(Math.random() * this.timed);
      if (slot < LATENCY_SAMPLES) this.latencies[slot] = latencyMs;
    }
  }

  reset(): void {
    this.requests = 0;
    this.failures = 0;
    this.timed = 0;
    this.latencies = [];
  }
}

export class OutlierState {
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far; the ejection time grows with it and it decays while the endpoint behaves. */
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  ejectedInInterval = false;
  readonly interval = new IntervalStats();
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
