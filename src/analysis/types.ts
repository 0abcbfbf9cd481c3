// The analysis of one run, as `report.json` holds it (schema "faultline.report/v1"): everything the
// HTML, Markdown and JUnit reports show is read from here, and machines can gate on it. Times are epoch
// milliseconds; durations milliseconds; percentages 0–100.
import type { LoadFigures } from '../experiments/load.ts';

export interface Analysis {
  readonly schema: 'faultline.report/v1';
  readonly experiment: {
    readonly name: string;
    readonly description: string;
    readonly seed: number;
    readonly outcome: 'passed' | 'failed' | 'halted' | 'inconclusive' | 'error' | null;
    readonly reason: string | null;
    readonly startedAt: number;
    readonly finishedAt: number | null;
    readonly complete: boolean;
  };
  /** baseline, one per fault step (its fault's id), recovery. */
  readonly windows: readonly AnalysisWindow[];
  /** Per service and window. */
  readonly services: readonly ServiceStats[];
  /** One-second buckets per service, for the charts. */
  readonly timeseries: readonly Bucket[];
  readonly faults: readonly FaultImpact[];
  readonly halts: readonly { readonly at: number; readonly reason: string }[];
  readonly hypotheses: readonly HypothesisVerdict[];
  readonly attribution: Attribution;
  readonly policies: Policies;
  readonly propagation: Propagation;
  readonly score: Score;
  /** Against the previous runs of the same experiment; null when there are none. */
  readonly regression: Regression | null;
  /** Experiment cohort against control group, when the run had a cohort. */
  readonly cohorts: CohortComparison | null;
  /** How the load was made and what became of its requests (ok, failed, cut by its stop, missed); null when none was sent. */
  readonly load: LoadFigures | null;
  /** The same figures from PromQL, when a Prometheus URL was given. */
  readonly prometheus?: PrometheusFigures;
}

export interface PrometheusFigures {
  readonly url: string;
  readonly figures: readonly { readonly service: string; readonly window: string; readonly requests: number; readonly availability: number | null; readonly p99: number | null }[];
}

export interface AnalysisWindow {
  readonly name: string;
  readonly kind: 'baseline' | 'fault' | 'recovery';
  readonly from: number;
  readonly to: number;
}

export interface Latency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface ServiceStats {
  readonly service: string;
  readonly window: string;
  readonly requests: number;
  readonly rps: number;
  /** Percent answered below 500. */
  readonly availability: number;
  readonly latency: Latency;
  /** Error-budget burn rate against each SLO the experiment names for the service. */
  readonly burn: readonly { readonly slo: number; readonly rate: number }[];
}

export interface Bucket {
  readonly service: string;
  /** Start of the second. */
  readonly t: number;
  readonly requests: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
}

export interface FaultImpact {
  readonly id: string;
  readonly action: string;
  readonly targets: readonly string[];
  readonly injectedAt: number | null;
  readonly removedAt: number | null;
  /** Times the fault acted (fault.applied). */
  readonly injected: number;
  /** Requests at the edge (the entry service) that failed with this fault on their trace. */
  readonly failedAtEdge: number;
  /** failedAtEdge ÷ injected: above 1 the fault was amplified, below 1 masked. */
  readonly factor: number | null;
}

export type Policy = 'retried-and-saved' | 'retried-and-failed' | 'budget-exhausted' | 'breaker-rejected' | 'timed-out' | 'not-retried' | 'no-policy-acted';

export interface AttributionRow {
  readonly requestId: string;
  readonly traceId: string | null;
  readonly at: number;
  /** The service the failing (or slow) call went to, and what its caller got. */
  readonly service: string;
  readonly status: number;
  readonly latencyMs: number;
  readonly flags: readonly string[];
  /** Faults on its trace, wherever they acted; or (via "window") the fault in force on the failing call's destination. */
  readonly faults: readonly string[];
  /** trace: a fault acted on this very request; window: none did, but the call failed on a service a fault had hit (a breaker it opened, an ejection). */
  readonly via: 'trace' | 'window';
  readonly policy: Policy;
}

export interface Attribution {
  /** Failed or slow calls with a fault on their trace (at most 500, the earliest first). */
  readonly rows: readonly AttributionRow[];
  readonly totals: readonly { readonly fault: string; readonly policy: Policy; readonly count: number }[];
  /** Failed calls with no fault on their trace. */
  readonly unattributed: number;
}

export interface Policies {
  readonly retries: readonly { readonly service: string; readonly injectedAborts: number; readonly masked: number; readonly maskingRatio: number | null; readonly attempts: number; readonly requests: number; readonly amplification: number | null }[];
  readonly breakers: readonly { readonly service: string; readonly opensAfterMs: number | null; readonly closesAfterMs: number | null }[];
  readonly ejections: readonly { readonly service: string; readonly endpoint: string; readonly ejectedAt: number; readonly restoredAt: number | null }[];
  /** Time from rollback until each service was back to its steady state; null when it was not. */
  readonly recovery: readonly { readonly service: string; readonly afterMs: number | null }[];
  /** For the timelines: retries per second per service, and breaker states over time. */
  readonly retryTimeline: readonly { readonly service: string; readonly t: number; readonly retries: number }[];
  readonly breakerTimeline: readonly { readonly service: string; readonly t: number; readonly state: 'closed' | 'open' | 'half-open' }[];
}

export interface Propagation {
  readonly nodes: readonly { readonly service: string; readonly faulted: boolean; readonly errors: number }[];
  /** Calls from → to during fault windows, and how many failed because of a fault injected elsewhere. */
  readonly edges: readonly { readonly from: string; readonly to: string; readonly calls: number; readonly errors: number; readonly propagated: number }[];
}

export interface HypothesisVerdict {
  readonly id: string;
  readonly kind: string;
  readonly hypothesis: string;
  readonly window: string;
  readonly outcome: 'pass' | 'fail' | 'inconclusive';
  readonly measured: string;
  readonly objective: string;
  readonly samples: number;
}

export interface Score {
  readonly value: number;
  readonly parts: readonly { readonly kind: string; readonly weight: number; readonly passed: number; readonly total: number; readonly points: number }[];
}

export interface Regression {
  readonly previous: readonly { readonly dir: string; readonly startedAt: number; readonly outcome: string | null; readonly score: number }[];
  readonly worse: readonly string[];
}

export interface CohortComparison {
  readonly service: string;
  readonly experiment: { readonly requests: number; readonly availability: number; readonly p99: number };
  readonly control: { readonly requests: number; readonly availability: number; readonly p99: number };
  /** Two-proportion z-test on availability, and a Mann–Whitney U test on latency. */
  readonly availabilityTest: { readonly z: number; readonly pValue: number; readonly significant: boolean };
  readonly latencyTest: { readonly u: number; readonly pValue: number; readonly significant: boolean };
}
