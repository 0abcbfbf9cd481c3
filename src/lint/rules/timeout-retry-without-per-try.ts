// timeout-retry-without-per-try: a route that retries the failures a slow try ends in (retryOn 5xx or
// gateway-error: the retry layer retries a per-try timeout's 504 under either) within a route timeout,
// but sets no per-try timeout. Nothing ends a try that hangs but the route timeout, after which the
// retry layer makes no retry (Envoy's rule too): the retries act on fast failures only.
import { ms, triesOf } from '../budget.ts';
import type { Finding } from '../findings.ts';
import { perTryToFit, retriesSlowTries, routesOfCalls, slowHalfOfTries, triesFigure } from '../tries.ts';
import { finding, type Rule } from './rule.ts';

export const timeoutRetryWithoutPerTry: Rule = {
  id: 'timeout-retry-without-per-try',
  check(model) {
    const found: Finding[] = [];
    for (const { route, edges } of routesOfCalls(model)) {
      const policy = retriesSlowTries(route);
      const timeoutMs = route.timeoutMs;
      if (!policy || policy.perTryTimeoutMs !== undefined || timeoutMs === undefined) continue;
      const edge = edges[0]!;
      const on = [...policy.retryOn].filter((c) => c === '5xx' || c === 'gateway-error').join(', ');
      found.push(finding(model, 'timeout-retry-without-per-try', {
        service: edge.from,
        path: [edge.from, edge.to],
        route: route.name,
        at: route.retriesAt,
        message: `route ${route.name} retries ${on} (${policy.attempts} ${policy.attempts === 1 ? 'retry' : 'retries'}) within its ${ms(timeoutMs)} timeout but has no per-try timeout: a try that hangs takes all ${ms(timeoutMs)}, and no retry follows it`,
        why: `only a per-try timeout ends a slow try early enough to retry it (its 504 is what ${on} retries); without one the route timeout ends the call, and the retry layer makes no retry after it. When one endpoint of ${edge.to} hangs, the calls it takes fail though another endpoint would answer`,
        fix: `set retries.perTryTimeout on route ${route.name} to ${ms(perTryToFit(policy, timeoutMs))} or less, so that ${triesOf(route)} tries and their backoff fit in ${ms(timeoutMs)}`,
        figures: [
          { name: `route ${route.name} timeout`, value: ms(timeoutMs), origin: 'config' },
          { name: `route ${route.name} per-try timeout`, value: 'none', origin: 'config' },
          { name: `route ${route.name} retryOn`, value: [...policy.retryOn].join(', '), origin: 'config' },
          triesFigure(route),
        ],
        predicts: slowHalfOfTries(model, edge, route, timeoutMs + Math.max(100, Math.round(timeoutMs / 5))),
      }));
    }
    return found;
  },
};
