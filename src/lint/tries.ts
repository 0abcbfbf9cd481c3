// How a route's tries play out in time, as the retry layer runs them: whether it retries a try that
// is too slow (the layer's own `retriable`, asked about a per-try timeout), when each try may end at
// worst (every earlier try cut by the per-try timeout, every backoff its longest), and how many fit
// in a wait; and the game day that shows slow tries going unretried. Shared by the timeout rules.
import type { RetryPolicySpec } from '../config/snapshot.ts';
import { perTryTimeout } from '../errors.ts';
import { mayRetry, retriable } from '../proxy/retry.ts';
import { loadRate, maxBackoffMs, ms, triesOf } from './budget.ts';
import type { Prediction } from './findings.ts';
import type { Edge, HopRoute, LintModel, Where } from './model.ts';

/**
 * The route's retry policy when a try that overruns is retried: attempts left, a retryOn that covers
 * the 504 of a per-try timeout (5xx, gateway-error), and a method the route carries that may be retried.
 */
export function retriesSlowTries(route: HopRoute): RetryPolicySpec | undefined {
  const policy = route.retries;
  if (!policy || policy.attempts === 0) return undefined;
  if (retriable(policy, { error: perTryTimeout(policy.perTryTimeoutMs ?? 0) }) === undefined) return undefined;
  if (route.methods !== undefined && !route.methods.some((m) => mayRetry(policy, m))) return undefined;
  return policy;
}

/** The longest backoff before retry n (1 for the first): full jitter waits below min(max, base × 2^(n-1)). */
function backoffCeilingMs(policy: RetryPolicySpec, retry: number): number {
  return Math.min(policy.backoff.maxMs, policy.backoff.baseMs * 2 ** (retry - 1));
}

/** When each try ends at worst, from the call's start: all before it cut at `perTryMs`, each backoff its longest. */
export function tryEndsMs(policy: RetryPolicySpec, perTryMs: number): number[] {
  const ends: number[] = [];
  let at = 0;
  for (let n = 1; n <= policy.attempts + 1; n++) {
    if (n > 1) at += backoffCeilingMs(policy, n - 1);
    at += perTryMs;
    ends.push(at);
  }
  return ends;
}

/** How many tries run to their per-try timeout, at worst, before `withinMs`. */
export function triesFitting(policy: RetryPolicySpec, perTryMs: number, withinMs: number): number {
  return tryEndsMs(policy, perTryMs).filter((end) => end <= withinMs).length;
}

/** The per-try timeout (whole ms) at which all of a policy's tries, with their longest backoff, end within `withinMs`. */
export function perTryToFit(policy: RetryPolicySpec, withinMs: number): number {
  return Math.max(1, Math.floor((withinMs - maxBackoffMs(policy)) / (policy.attempts + 1)));
}

/** The routes the known calls take, each once, with the calls that take it (the first caller stands for the finding). */
export function routesOfCalls(model: LintModel): { route: HopRoute; edges: Edge[] }[] {
  const byName = new Map<string, { route: HopRoute; edges: Edge[] }>();
  for (const edge of model.edges) {
    for (const route of edge.routes) {
      const seen = byName.get(route.name);
      if (seen) seen.edges.push(edge);
      else byName.set(route.name, { route, edges: [edge] });
    }
  }
  return [...byName.values()];
}

/** Where a route's per-try timeout is (or would go): its retries' field, when written. */
export function perTryAt(model: LintModel, route: HopRoute): Where {
  const i = model.snapshot.config.routes.findIndex((r) => r.name === route.name);
  if (route.implicit || i < 0) return route.retriesAt;
  return model.snapshot.config.routes[i]!.retries?.perTryTimeout !== undefined ? model.where(['routes', i, 'retries', 'perTryTimeout']) : route.retriesAt;
}

/** Tries as people count them: the declared number, with its origin. */
export function triesFigure(route: HopRoute): { name: string; value: string; origin: 'config' | 'default' } {
  return { name: `route ${route.name} tries`, value: `${triesOf(route)} (1 + ${route.retries?.attempts ?? 0} ${route.retries?.attempts === 1 ? 'retry' : 'retries'})`, origin: route.explicit.attempts ? 'config' : 'default' };
}

/**
 * Half the tries of the route slowed past `delayMs` at the caller's attempt point. With a retry after a
 * slow try, a call fails only when all its tries are slow (1 in 2^tries); here every slow first try
 * fails the call at the route timeout (1 in 2). The availability objective sits between the two.
 * (retriesMask counts injected aborts only, and a fast abort is retried here: it cannot show this.)
 */
export function slowHalfOfTries(model: LintModel, edge: Edge, route: HopRoute, delayMs: number): Prediction {
  const retried = 100 * (1 - 0.5 ** triesOf(route));
  const min = Math.floor((50 + retried) / 2);
  return {
    fault: { match: { source: edge.from, destination: edge.to, route: route.name }, at: 'attempt', percent: 50, delay: { fixed: ms(delayMs) } },
    durationMs: 10_000,
    entry: edge.from,
    rate: loadRate(model, edge.from),
    steadyState: [{ availability: { service: edge.to, min } }],
    expect: [],
    outcome: `with half the tries of route ${route.name} ${ms(delayMs)} slow, about half of ${edge.from}'s calls to ${edge.to} fail at the route timeout ${ms(route.timeoutMs!)} with one try, where retries after a slow try would lose only ${+(100 - retried).toFixed(1)} %`,
    signature: { hop: `${edge.from} → ${edge.to}`, acted: ['route-timeout'] },
  };
}

/** Every try of the route slowed past its per-try timeout (+20 %, at least +100 ms) at the caller's attempt point. */
export function slowEveryTry(model: LintModel, edge: Edge, route: HopRoute, perTryMs: number, told: (delay: string) => { outcome: string; acted: readonly string[] }): Prediction {
  const delayMs = perTryMs + Math.max(100, Math.round(perTryMs / 5));
  const { outcome, acted } = told(ms(delayMs));
  return {
    fault: { match: { source: edge.from, destination: edge.to, route: route.name }, at: 'attempt', delay: { fixed: ms(delayMs) } },
    durationMs: 10_000,
    entry: edge.from,
    rate: loadRate(model, edge.from),
    steadyState: [{ availability: { service: edge.to, min: 99 } }],
    expect: [],
    outcome,
    signature: { hop: `${edge.from} → ${edge.to}`, acted },
  };
}
