// retry-non-idempotent: a route with retryNonIdempotent that may carry writes (POST, PATCH — what the
// retry layer leaves alone unless told) and retries them on failures that come after the app may have
// applied them: a status, a reset, a per-try timeout. Only a refused connection (connect-failure;
// refused-stream) means the request never arrived. RFC 9110 §9.2.2: clients SHOULD NOT retry such
// methods automatically; RFC 9112 §9.3.1: a proxy MUST NOT.
import type { RetryOnCondition } from '../../config/schema.ts';
import type { Finding, Prediction } from '../findings.ts';
import { loadRate, ms } from '../budget.ts';
import type { Edge, LintModel } from '../model.ts';
import { NEVER_REACHED, entryOf, nonIdempotent, retrying, type RetryingRoute } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

/** The writes a route with no method match may carry, when no recording says which. */
const WRITES = ['POST', 'PATCH'];

export const retryNonIdempotent: Rule = {
  id: 'retry-non-idempotent',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      // gRPC calls are retried whatever their method and whatever retryNonIdempotent says: the gRPC
      // statuses of retryOn (unavailable, …) are the contract there, as in Envoy and Linkerd.
      if (edge.grpc) continue;
      for (const route of edge.routes.filter(retrying)) {
        if (!route.retries.retryNonIdempotent) continue;
        const after = [...route.retries.retryOn].filter((c) => !NEVER_REACHED.has(c));
        if (after.length === 0) continue;
        const declared = route.methods === undefined ? undefined : route.methods.filter(nonIdempotent);
        if (declared !== undefined && declared.length === 0) continue;
        const seen = (edge.observed?.methods ?? []).filter((m) => nonIdempotent(m) && carries(edge, route, m));
        found.push(report(model, edge, route, declared ?? WRITES, seen, after));
      }
    }
    return found;
  },
};

/** Whether a call with this method on the edge takes this route (the first whose methods match). */
function carries(edge: Edge, route: RetryingRoute, method: string): boolean {
  return edge.routes.find((r) => r.methods === undefined || r.methods.includes(method)) === route;
}

function report(model: LintModel, edge: Edge, route: RetryingRoute, writes: readonly string[], seen: readonly string[], after: readonly RetryOnCondition[]): Finding {
  const i = model.snapshot.config.routes.findIndex((r) => r.name === route.name);
  const methods = seen.length > 0 ? seen : writes;
  const carried = route.methods === undefined ? `any method (no match.method), ${seen.length > 0 ? `and the recording shows ${seen.join(', ')}` : `${WRITES.join(' and ')} among them`}` : `${methods.join(', ')} (match.method)`;
  return finding(model, 'retry-non-idempotent', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: i < 0 ? route.retriesAt : model.where(['routes', i, 'retries', 'retryNonIdempotent']),
    message: `route ${route.name} retries ${methods.join('/')} from ${edge.from} to ${edge.to} (retryNonIdempotent: true; it carries ${carried}) on ${after.join(', ')}: failures after which ${edge.to} may already have applied the write`,
    why: `a status, a reset or a per-try timeout come after the request reached ${edge.to}'s app: a retry makes it do the write again (a second charge, a second order). Only connect-failure and refused-stream mean the request never arrived. RFC 9110 §9.2.2: clients SHOULD NOT retry non-idempotent methods automatically; RFC 9112 §9.3.1: a proxy MUST NOT${route.retries.bufferLimit === 0 ? ' (with bufferLimit 0 only writes without a body are replayed, but those are)' : ''}`,
    fix: `retry writes on connect-failure (and refused-stream) only — a separate route for ${methods.join('/')} with retryOn [connect-failure] — or drop retryNonIdempotent; retry a write elsewhere only with an idempotency key ${edge.to} checks`,
    figures: [
      { name: `route ${route.name} retryNonIdempotent`, value: 'true', origin: 'config' },
      { name: `route ${route.name} retryOn`, value: [...route.retries.retryOn].join(', '), origin: route.explicit.retryOn ? 'config' : 'default' },
      { name: `route ${route.name} methods`, value: route.methods?.join(', ') ?? 'any', origin: route.methods ? 'config' : 'default' },
      ...(seen.length > 0 ? [{ name: `${edge.from} → ${edge.to} methods recorded`, value: edge.observed!.methods.join(', '), origin: 'recording' as const }] : []),
      { name: `route ${route.name} tries`, value: String(1 + route.retries.attempts), origin: route.explicit.attempts ? 'config' : 'default' },
      { name: 'bodies replayed up to', value: `${route.retries.bufferLimit} bytes`, origin: 'config' },
    ],
    observed: seen.length > 0,
    predicts: predict(model, edge, route, methods),
  });
}

/**
 * The game day: the writes' responses held past the per-try timeout at the caller's attempt, after
 * the callee's app has them — each try is cut, retried, and applied again. Without a per-try timeout,
 * or with retries only on statuses and resets, no fault makes the app answer after doing the work.
 */
function predict(model: LintModel, edge: Edge, route: RetryingRoute, methods: readonly string[]): Prediction | undefined {
  const perTry = route.retries.perTryTimeoutMs;
  const on = route.retries.retryOn;
  if (perTry === undefined || !(on.has('5xx') || on.has('gateway-error'))) return undefined;
  const entry = entryOf(model, [edge.from, edge.to]);
  return {
    fault: { match: { source: edge.from, destination: edge.to, method: [...methods] }, at: 'attempt', delay: { fixed: ms(perTry * 2), before: 'headers' } },
    durationMs: 10_000,
    entry,
    rate: loadRate(model, entry),
    steadyState: [{ availability: { service: edge.to, min: 99 } }],
    expect: [],
    outcome: `every ${methods.join('/')} from ${edge.from} reaches ${edge.to}'s app ${1 + route.retries.attempts} times: each try is cut by the ${ms(perTry)} per-try timeout after the app has it, and tried again (only the writes ${edge.from}'s app sends are touched)`,
    signature: { hop: `${edge.from} → ${edge.to}`, acted: ['retry-limit', 'per-try-timeout'] },
  };
}
