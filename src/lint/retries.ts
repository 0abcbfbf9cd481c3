// What the proxy's retry layer does, as the retry rules of lint reason about it — asked of the proxy's
// own rules where they are exported (proxy/retry.ts: retriable, mayRetry), else encoded from them
// (retry-budget.ts: ratio × the last 10 s of requests + minPerSecond, per sidecar and route;
// backoff.ts: full jitter under min(max, base × 2^(n-1)); breaker/: maxRetries only with a breaker).
import type { RetryOnCondition } from '../config/schema.ts';
import type { RetryPolicySpec } from '../config/snapshot.ts';
import { mayRetry, retriable } from '../proxy/retry.ts';
import type { Edge, HopRoute, LintModel } from './model.ts';

/** A route whose retry layer may make a second try. */
export type RetryingRoute = HopRoute & { readonly retries: RetryPolicySpec };

export function retrying(route: HopRoute): route is RetryingRoute {
  return route.retries !== undefined && route.retries.attempts > 0;
}

/**
 * Conditions under which the request never reached the app: a refused connection (connect-failure);
 * refused-stream is HTTP/2's "not processed", which faultline's HTTP/1.1 upstreams never raise. Every
 * other condition (a status, a reset, a per-try timeout under 5xx or gateway-error) comes after the app may have acted.
 */
export const NEVER_REACHED: ReadonlySet<RetryOnCondition> = new Set(['connect-failure', 'refused-stream']);

/** Whether the retry layer retries an answer with this status. */
export function retriesStatus(policy: RetryPolicySpec, status: number): boolean {
  return retriable(policy, { response: { status, headers: {}, body: null } }) !== undefined;
}

/** Whether the retry layer leaves a method alone unless retryNonIdempotent (POST, PATCH, CONNECT...). */
export function nonIdempotent(method: string): boolean {
  return !mayRetry({ retryNonIdempotent: false } as RetryPolicySpec, method);
}

/** The sidecars of a service: each has its own budget per route. */
export function sidecarsOf(model: LintModel, service: string): number {
  return Math.max(1, model.snapshot.sidecars.filter((s) => s.service === service).length);
}

/**
 * Tries per call the budget lets a sustained stream of failures cost, at `rps` calls a second on the
 * route from `sidecars` sidecars: retries ≤ ratio × requests + minPerSecond each second, per sidecar.
 * Without a rate, the bound at high rates (1 + ratio). Never above the route's tries.
 */
export function budgetTries(policy: RetryPolicySpec, rps: number | undefined, sidecars = 1): number {
  const floor = rps === undefined || rps <= 0 ? (rps === undefined ? 0 : Infinity) : (sidecars * policy.budget.minPerSecond) / rps;
  return Math.min(1 + policy.attempts, 1 + policy.budget.ratio + floor);
}

/** The retry ceilings of a policy's retries, in ms: retry n waits random(0, min(max, base × 2^(n-1))). */
export function backoffCeilings(policy: RetryPolicySpec): number[] {
  return Array.from({ length: policy.attempts }, (_, i) => Math.min(policy.backoff.maxMs, policy.backoff.baseMs * 2 ** i));
}

/** The retrying route of an edge with the most tries, if any. */
export function mostTries(edge: Edge): RetryingRoute | undefined {
  return edge.routes.filter(retrying).reduce<RetryingRoute | undefined>((a, b) => (a === undefined || b.retries.attempts > a.retries.attempts ? b : a), undefined);
}

/**
 * A fault that fails calls from → to in a way the route's retry layer retries, with its match and
 * point: a 503 when it retries 503, else a reset, else (at an attempt) a refused connection — a
 * partition, which names its services itself. Undefined when it retries none of them.
 */
export function retriedFailure(policy: RetryPolicySpec, point: 'attempt' | 'inbound', from: string, to: string): Record<string, unknown> | undefined {
  const match = { match: { source: from, destination: to }, at: point };
  if (retriesStatus(policy, 503)) return { ...match, abort: { status: 503 } };
  if (policy.retryOn.has('reset')) return { ...match, abort: { reset: true } };
  if (point === 'attempt' && policy.retryOn.has('connect-failure')) return { at: point, partition: { from: [from], to: [to], direction: 'one-way', mode: 'reject' } };
  return undefined;
}

/** Where a game day's load enters for a path: its first service with an inbound listener. */
export function entryOf(model: LintModel, path: readonly string[]): string {
  return path.find((s) => model.snapshot.sidecars.some((c) => c.service === s && c.inbound !== undefined)) ?? path[0]!;
}

/** A factor for people: 27, 1.73. */
export function times(value: number): string {
  return Number.isFinite(value) ? `${+value.toFixed(2)}` : '∞';
}
