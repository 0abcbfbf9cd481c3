// What `faultline lint` says: findings, their kinds and severities, and the game day each predicts.
// Rule ids and their severities live here, in one place; each rule's check is a file of rules/.
import type { Where } from './model.ts';

export type Severity = 'error' | 'warning' | 'info';
export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

/** error above warning above info. */
export function atLeast(severity: Severity, threshold: Severity): boolean {
  return SEVERITIES.indexOf(severity) <= SEVERITIES.indexOf(threshold);
}

/** A number a finding rests on, and where it came from: the file, a default, the app's declaration, or a recording. */
export interface Figure {
  readonly name: string;
  readonly value: string;
  readonly origin: 'config' | 'default' | 'app' | 'recording' | 'derived';
}

/**
 * What a finding predicts a game day would show: the fault that would expose it, the hypothesis that
 * would then fail, and the failures' signature in the run's attribution (the hop where they surface
 * and which policy acted there), by which a report tells the finding confirmed.
 */
export interface Prediction {
  /** The fault, as an experiment's method step has it (no id, no lease: suggest.ts gives them). */
  readonly fault: Readonly<Record<string, unknown>>;
  /** How long the fault is held. */
  readonly durationMs: number;
  /** The service the load enters at, and its rate (requests per second). */
  readonly entry: string;
  readonly rate: number;
  /** The hypotheses, as an experiment's steadyState / expect entries have them; the first would fail. */
  readonly steadyState: readonly Readonly<Record<string, unknown>>[];
  readonly expect: readonly Readonly<Record<string, unknown>>[];
  /** The prediction in words: "frontend's calls to cart time out after 1 s while cart's retries to stock go on". */
  readonly outcome: string;
  /** The failures that confirm it: at this hop ("a → b"), one of these policies acted (analysis' HopActed). */
  readonly signature: { readonly hop: string; readonly acted: readonly string[] };
}

export interface Finding {
  readonly rule: RuleId;
  readonly severity: Severity;
  /** The service whose config (or app) is at fault: the caller, for a hop; findings are grouped by it. */
  readonly service: string;
  /** The services involved, in call order ("frontend", "cart", "stock"). */
  readonly path: readonly string[];
  readonly route: string | undefined;
  /** The field to change, with file and line. */
  readonly at: Where;
  /** One line: what is wrong. */
  readonly message: string;
  /** Why it matters. */
  readonly why: string;
  readonly fix: string;
  readonly figures: readonly Figure[];
  /** What the finding rests on: the config alone, or with a recording. */
  readonly basis: 'config' | 'config+recording';
  readonly predicts: Prediction | undefined;
}

/** Every finding kind, its severity and a line about it (docs/lint.md has each with an example). */
export const RULES = {
  'timeout-inversion': { severity: 'error', summary: 'a caller gives up before its callee\'s own timeouts and retries can act' },
  'missing-timeout': { severity: 'error', summary: 'a hop with no timeout anywhere (error in a chain, warning at a leaf)' },
  'app-timeout-below-mesh': { severity: 'warning', summary: 'the app gives up before the mesh\'s last try can end' },
  'per-try-ge-route-timeout': { severity: 'warning', summary: 'the per-try timeout is at least the route timeout: no retry follows a slow try' },
  'timeout-retry-without-per-try': { severity: 'warning', summary: 'retries on failures a slow try never returns, with no per-try timeout' },
  'attempts-exceed-budget': { severity: 'info', summary: 'the declared tries and backoff do not fit in the route timeout' },
  'retry-amplification': { severity: 'warning', summary: 'retries at several hops multiply the load on the services below' },
  'retry-without-budget': { severity: 'warning', summary: 'a retry budget that does not bound retries' },
  'retry-non-idempotent': { severity: 'error', summary: 'writes retried on failures after which they may already have been applied' },
  'retry-on-overload': { severity: 'warning', summary: 'retries on the statuses a callee uses to say it is overloaded (429, 503)' },
  'layered-retries': { severity: 'warning', summary: 'the app and the mesh both retry the same call' },
  'backoff-missing': { severity: 'warning', summary: 'retries with no backoff to speak of' },
  'breaker-cannot-trip': { severity: 'warning', summary: 'a circuit breaker that cannot open (or shed load) on the failures and traffic it gets' },
  'ejection-cannot-act': { severity: 'warning', summary: 'outlier detection that ejects the only endpoint, one endpoint at most, too late for the traffic, or (failure percentage, latency) never judges' },
  'health-check-slower-than-breaker': { severity: 'info', summary: 'health checks take longer to mark an endpoint down than the breaker\'s cool-down or an ejection lasts' },
  'subset-selects-nothing': { severity: 'warning', summary: 'a route sends a share of its calls to a subset no endpoint of the file has' },
  'timeout-below-latency': { severity: 'warning', summary: 'a timeout at or below what the callee takes in a recording' },
} as const satisfies Record<string, { severity: Severity; summary: string }>;

export type RuleId = keyof typeof RULES;
