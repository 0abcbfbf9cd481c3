// What one caller's sidecar sends to a destination, as the breaker and outlier rules need it: each
// sidecar keeps its own breakers (one per destination: the service, or each subset a route names) and
// its own outlier counts, so a recorded rate is split among the caller's sidecars and the route's
// weights; and how many tries a failing destination gets, retries and the retry budget included.
import type { RetryPolicySpec } from '../config/snapshot.ts';
import type { ProxyResponse } from '../http/types.ts';
import { mayRetry, retriable } from '../proxy/retry.ts';
import type { Edge, HopRoute, LintModel } from './model.ts';

/** The retry budget's own window (retry-budget.ts). */
const BUDGET_WINDOW_S = 10;

/** The sidecars a service's calls leave from (at least one: a recording saw them leave). */
export function sidecarsOf(model: LintModel, service: string): number {
  return Math.max(1, model.snapshot.sidecars.filter((s) => s.service === service).length);
}

/** Calls per second one of the caller's sidecars makes on the edge, as recorded; undefined without a recording of it. */
export function sidecarRps(model: LintModel, edge: Edge): number | undefined {
  return edge.observed && edge.observed.rps / sidecarsOf(model, edge.from);
}

/** One breaker of the caller's sidecar for the callee: its subset ('' for the whole service) and the share of the calls it gets. */
export interface BreakerShare {
  readonly subset: string;
  readonly share: number;
}

/**
 * The breakers a caller's sidecar keeps for the callee, one per destination its routes name, each with
 * the largest share of the calls any of the edge's routes gives it (a route carrying every call is the
 * most a breaker can get).
 */
export function breakerShares(model: LintModel, edge: Edge): BreakerShare[] {
  const shares = new Map<string, number>();
  for (const hop of edge.routes) {
    const route = model.snapshot.routes.find((r) => r.name === hop.name);
    if (!route) continue;
    for (const d of route.destinations) {
      if (d.service !== edge.to || route.totalWeight <= 0) continue;
      shares.set(d.subsetKey, Math.max(shares.get(d.subsetKey) ?? 0, d.weight / route.totalWeight));
    }
  }
  return [...shares].map(([subset, share]) => ({ subset, share })).filter((b) => b.share > 0);
}

/** The breaker's name as the proxy gives it (`payments [version=v2]`). */
export function breakerName(service: string, subset: string): string {
  return subset ? `${service} [${subset}]` : service;
}

const ABORT_503: { response: ProxyResponse } = { response: { status: 503, headers: {}, body: null } };

/**
 * The retries a route makes after a try answered 503 (the fault the rules predict with), asking the
 * retry layer's own rules: 0 when its retryOn does not cover it or a recorded method may not be retried.
 */
export function retriesOn503(route: HopRoute, methods: readonly string[]): number {
  const policy = route.retries;
  if (!policy || !retriable(policy, ABORT_503)) return 0;
  if (methods.some((m) => !mayRetry(policy, m))) return 0;
  return policy.attempts;
}

/** The edge's route with the most retries on a 503 (the most tries a failing callee can get). */
export function mostRetried(edge: Edge): { route: HopRoute | undefined; retries: number } {
  // A gRPC call is retried whatever its method (always POST).
  const methods = edge.grpc ? [] : (edge.observed?.methods ?? []);
  return edge.routes.reduce<{ route: HopRoute | undefined; retries: number }>(
    (best, route) => {
      const retries = retriesOn503(route, methods);
      return retries > best.retries ? { route, retries } : best;
    },
    { route: edge.routes[0], retries: 0 },
  );
}

/**
 * Tries a sidecar makes in `seconds` when every try fails: its calls, plus the retries its route makes,
 * as far as the retry budget lets them (over its 10 s window: ratio × requests + minPerSecond × 10).
 */
export function triesWhenFailing(rps: number, seconds: number, retries: number, budget: RetryPolicySpec['budget'] | undefined): number {
  const calls = rps * seconds;
  if (retries === 0 || !budget) return calls;
  const allowed = (budget.ratio * rps + budget.minPerSecond) * Math.max(seconds, BUDGET_WINDOW_S);
  return calls + Math.min(calls * retries, allowed);
}

/** A rate for people: 0.25/s, 12/s. */
export function perSecond(value: number): string {
  return `${+value.toFixed(value < 10 ? 2 : 1)}/s`;
}

/** A count for people: whole when it is, else one decimal. */
export function count(value: number): string {
  return `${+value.toFixed(1)}`;
}
