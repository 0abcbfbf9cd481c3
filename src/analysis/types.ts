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
    /** The rollback as the journal has it: verified or not, and what was left where; null when none was recorded. */
    readonly rollback: { readonly verified: boolean; readonly remaining: Readonly<Record<string, readonly string[]>> } | null;
  };
  /** baseline, one per fault step (its fault's id), recovery. */
  readonly windows: readonly AnalysisWindow[];
  /** Per service and window. */
  readonly services: readonly ServiceStats[];
  /** One-second buckets per service on the run's clock (buckets.ts), for the charts. */
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
  /** The lint findings of the run's mesh file (with its recording) and whether this run confirms each; absent when the run kept no mesh.yaml. */
  readonly lint?: LintSection;
}

/** `faultline lint` on the run's own mesh.yaml and recording: each finding that predicts a game day, and whether this run confirms it. */
export interface LintSection {
  /** The mesh file linted (the run's mesh.yaml). */
  readonly file: string;
  /** Why the lint could not be made; null when it was. */
  readonly error: string | null;
  readonly findings: readonly LintConfirmation[];
  /** Findings that predict no game day (about settings, not behaviour under a fault): counted, not judged. */
  readonly unpredicted: number;
}

export interface LintConfirmation {
  readonly rule: string;
  readonly severity: 'error' | 'warning' | 'info';
  readonly service: string;
  readonly path: readonly string[];
  readonly route: string | null;
  readonly at: { readonly file: string; readonly line: number; readonly field: string };
  readonly message: string;
  /** What the finding predicts: the hop where failures surface, the policies that act there, in words, and the hypothesis that fails. */
  readonly predicted: { readonly hop: string; readonly acted: readonly string[]; readonly outcome: string; readonly hypothesis: string | null };
  /**
   * confirmed: failures surfaced at the predicted hop with a predicted policy, from a fault like the
   * predicted one, and the predicted hypothesis (any, when the experiment does not state it) failed.
   * not-confirmed: such a fault was injected, and that did not happen (not refuted: a longer fault or more
   * load may yet show it). not-exercised: no such fault was injected.
   */
  readonly status: 'confirmed' | 'not-confirmed' | 'not-exercised';
  /** The run's faults like the predicted one (same action, on the predicted services, point and source). */
  readonly faults: readonly string[];
  /** Failed requests at the edge from those faults, surfaced at the predicted hop with a predicted policy. */
  readonly failures: number;
  /** Failed requests at the edge from those faults that surfaced elsewhere, or with another policy. */
  readonly elsewhere: number;
  /** The failed verdicts that count: the predicted hypothesis's (any, when the experiment does not state it) in the method window. */
  readonly failedHypotheses: readonly string[];
  readonly why: string;
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
  /** Start of the bucket. */
  readonly t: number;
  /** Its end: a second after its start, or 0.75–1.25 s where a fault window begins or ends in it (buckets.ts). */
  readonly to: number;
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
  /** The instances it hit (fault.applied with an endpoint: after balancing, inbound, health checks), most hit first; empty when no injection knew its instance. */
  readonly instances: readonly { readonly endpoint: string; readonly count: number }[];
}

export type Policy = 'retried-and-saved' | 'retried-and-failed' | 'budget-exhausted' | 'breaker-rejected' | 'timed-out' | 'not-retried' | 'no-policy-acted';

export interface AttributionRow {
  readonly requestId: string;
  readonly traceId: string | null;
  readonly at: number;
  /** The service called at the hop where the failure surfaced (or, for a slow request, the faulted call's), and what the edge got. */
  readonly service: string;
  readonly status: number;
  /** The gRPC status the edge got (a gRPC error rides on HTTP 200); null for a call that is not gRPC. */
  readonly grpcStatus: number | null;
  readonly latencyMs: number;
  readonly flags: readonly string[];
  /** Faults on its trace, wherever they acted; or (via "window") the faults in force on a service on its path. */
  readonly faults: readonly string[];
  /** trace: a fault acted on this very request; window: none did, but the call failed on a service a fault had hit (a breaker it opened, an ejection). */
  readonly via: 'trace' | 'window';
  /** What the policies did at the hop where it surfaced, read from its flags and tries. */
  readonly policy: Policy;
  /** Where a fault on its trace acted, "source → destination"; null when none did. */
  readonly faultHop: string | null;
  /**
   * The hop where the failure surfaced: the innermost on its trace whose failure the mesh made (flags
   * UT, URX, UBX, UO, UH, UF, UC, FI...), else the fault's, else the innermost that failed.
   */
  readonly surfaced: AttributedHop | null;
  /** The callers' hops from the surfaced one's out to the edge: what each could have done. */
  readonly path: readonly AttributedHop[];
  /** The whole of it in one sentence: the fault, where it surfaced, what acted, whether a retry could. */
  readonly explanation: string;
}

/** Which policy made a hop fail (or 'app': the service answered the failure; 'caller-left': DC). */
export type HopActed = 'route-timeout' | 'per-try-timeout' | 'timeout' | 'retry-limit' | 'retry-budget' | 'breaker' | 'outlier' | 'no-healthy-upstream' | 'fault' | 'connect-failure' | 'reset' | 'caller-left' | 'app' | 'none';

export interface RetryVerdict {
  readonly verdict: 'retried' | 'none-configured' | 'per-try-timeout-would-allow' | 'no-time-left' | 'budget-spent' | 'limit-reached' | 'breaker-refused' | 'method-not-idempotent' | 'not-retriable' | 'not-retried' | 'unknown';
  readonly why: string;
}

/** One call as the calling sidecar saw it (inbound: at the called service's own sidecar). */
export interface AttributedHop {
  /** "source → destination", as the table shows it. */
  readonly hop: string;
  readonly sidecar: string;
  readonly direction: 'outbound' | 'inbound';
  readonly route: string | null;
  readonly status: number;
  /** The gRPC status at this hop; null for a call that is not gRPC. */
  readonly grpcStatus: number | null;
  readonly flags: readonly string[];
  readonly attempts: number;
  readonly latencyMs: number;
  readonly acted: HopActed;
  /** What acted, in words ("route timeout 3 s of route cart cut the request after 3 s"). */
  readonly how: string;
  readonly retry: RetryVerdict;
}

export interface Attribution {
  /** Failed or slow calls with a fault on their trace (at most 500, the earliest first). */
  readonly rows: readonly AttributionRow[];
  readonly totals: readonly { readonly fault: string; readonly policy: Policy; readonly count: number }[];
  /** Failed requests at the edge per fault, hop where they surfaced, policy that acted there and retry verdict (all of them, not only the rows kept); most first. */
  readonly causes: readonly { readonly faults: readonly string[]; readonly hop: string; readonly sidecar: string; readonly acted: HopActed; readonly retry: RetryVerdict['verdict']; readonly failures: number }[];
  /** Failed calls with no fault on their trace. */
  readonly unattributed: number;
}

export interface Policies {
  readonly retries: readonly { readonly service: string; readonly injectedAborts: number; readonly masked: number; readonly maskingRatio: number | null; readonly attempts: number; readonly requests: number; readonly amplification: number | null }[];
  readonly breakers: readonly { readonly service: string; readonly opensAfterMs: number | null; readonly closesAfterMs: number | null }[];
  /** Each ejection: by which caller's sidecar, which detector, why in words and with its numbers (outlier.ejected). */
  readonly ejections: readonly {
    readonly service: string;
    readonly endpoint: string;
    readonly sidecar: string;
    readonly ejectedAt: number;
    readonly restoredAt: number | null;
    /** null in recordings made before detectors were named. */
    readonly detector: string | null;
    readonly reason: string;
    readonly figures: Readonly<Record<string, number>>;
  }[];
  /** Time from rollback until each service was back to its steady state; null when it was not. */
  readonly recovery: readonly { readonly service: string; readonly afterMs: number | null }[];
  /** For the timelines: retries per service in the same buckets as the time series (from t to to), and breaker states over time. */
  readonly retryTimeline: readonly { readonly service: string; readonly t: number; readonly to: number; readonly retries: number }[];
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
  /** not-run: its window never came (the run ended before it, or no fault was injected); left out of the score. */
  readonly outcome: 'pass' | 'fail' | 'inconclusive' | 'not-run';
  readonly measured: string;
  readonly objective: string;
  readonly samples: number;
}

export interface Score {
  /** 0–100; null when no fault was injected: a run that tested nothing has no score. */
  readonly value: number | null;
  /** Why there is no score; null when there is one. */
  readonly reason: string | null;
  readonly parts: readonly { readonly kind: string; readonly weight: number; readonly passed: number; readonly total: number; readonly points: number }[];
}

export interface Regression {
  readonly previous: readonly { readonly dir: string; readonly startedAt: number; readonly outcome: string | null; readonly score: number | null }[];
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
