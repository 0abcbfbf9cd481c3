// retry-on-overload: retries on 429 or 503 — what a callee answers to say it is overloaded (a gRPC
// callee: RESOURCE_EXHAUSTED, gRPC's 429, retryOn resource-exhausted) — with a
// budget above the Google SRE book's 10 % of requests. The retry layer (proxy/retry.ts) never reads
// Retry-After: an overloaded callee asking for 30 s gets the retry after the backoff (≤ backoff.max).
import { loadRate, ms } from '../budget.ts';
import type { Figure, Finding } from '../findings.ts';
import type { Edge, LintModel } from '../model.ts';
import { entryOf, retriesStatus, retrying, type RetryingRoute } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

/** The Google SRE book's per-client retry ratio. */
const SRE_RATIO = 0.1;
const OVERLOAD = [429, 503];

export const retryOnOverload: Rule = {
  id: 'retry-on-overload',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      for (const route of edge.routes.filter(retrying)) {
        const statuses: (number | string)[] = OVERLOAD.filter((s) => retriesStatus(route.retries, s));
        if (route.retries.retryOn.has('resource-exhausted')) statuses.push('RESOURCE_EXHAUSTED');
        if (statuses.length === 0 || route.retries.budget.ratio <= SRE_RATIO) continue;
        found.push(report(model, edge, route, statuses));
      }
    }
    return found;
  },
};

function report(model: LintModel, edge: Edge, route: RetryingRoute, statuses: readonly (number | string)[]): Finding {
  const { ratio, minPerSecond } = route.retries.budget;
  const by = [...route.retries.retryOn].filter((c) => c === '5xx' || c === 'gateway-error' || c === 'retriable-status-codes' || c === 'resource-exhausted');
  const entry = entryOf(model, [edge.from, edge.to]);
  const http = statuses.filter((s): s is number => typeof s === 'number');
  const status = http.includes(503) ? 503 : http[0];
  return finding(model, 'retry-on-overload', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: route.explicit.retryOn ? model.where(['routes', model.snapshot.config.routes.findIndex((r) => r.name === route.name), 'retries', 'retryOn']) : route.retriesAt,
    message: `route ${route.name} retries ${statuses.join(' and ')} from ${edge.to} (retryOn ${by.join(', ')}) with a budget of ${Math.round(ratio * 100)} % + ${minPerSecond}/s, above the ${SRE_RATIO * 100} % the SRE book allows, and does not honour Retry-After`,
    why: `${statuses.join(' and ')} ${statuses.length > 1 ? 'are' : 'is'} how ${edge.to} says it is overloaded: each retry adds load to a service that just said it has too much, up to ${Math.round(ratio * 100)} % more plus ${minPerSecond} a second per sidecar. faultline's retry layer ignores Retry-After: a callee asking for time gets the retry within ${ms(route.retries.backoff.maxMs)} (backoff.max) anyway`,
    fix: `on route ${route.name}, drop ${statuses.join('/')} from the retried statuses (retryOn gateway-error or 5xx include 503; retriableStatusCodes may list 429 and 503), or lower budget.ratio to ${SRE_RATIO} or below so that retries stay a small share of the load`,
    figures: [
      { name: `route ${route.name} retryOn`, value: [...route.retries.retryOn].join(', '), origin: route.explicit.retryOn ? 'config' : 'default' },
      ...(route.retries.retryOn.has('retriable-status-codes') ? [{ name: `route ${route.name} retriableStatusCodes`, value: [...route.retries.retriableStatusCodes].join(', '), origin: codesOrigin(route) }] : []),
      { name: `route ${route.name} budget ratio`, value: String(ratio), origin: route.explicit.budget ? 'config' : 'default' },
      { name: 'SRE guidance', value: `${SRE_RATIO}`, origin: 'default' },
      { name: 'Retry-After honoured', value: 'no (proxy/retry.ts)', origin: 'default' },
    ],
    predicts: {
      fault: { match: { source: edge.from, destination: edge.to }, at: 'inbound', abort: status === undefined ? { grpcStatus: 8 } : { status, headers: { 'retry-after': '5' } } },
      durationMs: 10_000,
      entry,
      rate: loadRate(model, entry),
      steadyState: [{ availability: { service: edge.to, min: 99 } }],
      expect: [],
      outcome: `with ${edge.to} answering ${status ?? 'RESOURCE_EXHAUSTED'}${status === undefined ? '' : ' with Retry-After: 5'}, ${edge.from}'s sidecar retries each call ${route.retries.attempts} more time${route.retries.attempts > 1 ? 's' : ''} within ${ms(route.retries.backoff.maxMs)} until the budget is spent, not 5 s later`,
      signature: { hop: `${edge.from} → ${edge.to}`, acted: ['retry-limit', 'retry-budget', 'fault'] },
    },
  });
}

/** [503] is the default list; another was written. */
function codesOrigin(route: RetryingRoute): Figure['origin'] {
  const codes = [...route.retries.retriableStatusCodes];
  return codes.length === 1 && codes[0] === 503 ? 'default' : 'config';
}
