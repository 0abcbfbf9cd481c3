// per-try-ge-route-timeout: a route whose per-try timeout is at least its timeout. The route timeout
// wraps the retry layer (stack.ts) and a retry is not made once it has fired (retry.ts checks the
// request's cancellation): a slow try is cut by the route timeout, never by its own, and no retry
// follows it. Retries still follow fast failures (a reset, a 503), so the finding is about slow tries.
import { ms, triesOf } from '../budget.ts';
import type { Finding } from '../findings.ts';
import { perTryAt, perTryToFit, retriesSlowTries, routesOfCalls, slowHalfOfTries, triesFigure } from '../tries.ts';
import { finding, type Rule } from './rule.ts';

export const perTryGeRouteTimeout: Rule = {
  id: 'per-try-ge-route-timeout',
  check(model) {
    const found: Finding[] = [];
    for (const { route, edges } of routesOfCalls(model)) {
      const policy = retriesSlowTries(route);
      const perTryMs = policy?.perTryTimeoutMs;
      const timeoutMs = route.timeoutMs;
      if (!policy || perTryMs === undefined || timeoutMs === undefined || perTryMs < timeoutMs) continue;
      const edge = edges[0]!;
      found.push(finding(model, 'per-try-ge-route-timeout', {
        service: edge.from,
        path: [edge.from, edge.to],
        route: route.name,
        at: perTryAt(model, route),
        message: `route ${route.name}'s per-try timeout (${ms(perTryMs)}) is not below its timeout (${ms(timeoutMs)}): a slow try is cut by the route timeout, and none of its ${policy.attempts} ${policy.attempts === 1 ? 'retry' : 'retries'} follows it`,
        why: `the route timeout covers every try; once it fires the retry layer makes no retry. A try that hangs (${edge.to} slow, an endpoint stuck) fails the whole call, though the route declares ${triesOf(route)} tries for it`,
        fix: `lower route ${route.name}'s per-try timeout to ${ms(perTryToFit(policy, timeoutMs))} or less, so that all ${triesOf(route)} tries and their backoff fit in ${ms(timeoutMs)} (or raise the timeout)`,
        figures: [
          { name: `route ${route.name} per-try timeout`, value: ms(perTryMs), origin: 'config' },
          { name: `route ${route.name} timeout`, value: ms(timeoutMs), origin: 'config' },
          triesFigure(route),
        ],
        predicts: slowHalfOfTries(model, edge, route, perTryMs + Math.max(100, Math.round(perTryMs / 5))),
      }));
    }
    return found;
  },
};
