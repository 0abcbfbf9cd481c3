// retry-without-budget: a retry budget that does not bound the retries it is there to bound. The
// proxy's budget (proxy/retry-budget.ts) lets retries add ratio × the requests of the last 10 s plus
// minPerSecond each second, per sidecar and route: with ratio ≥ 1 retries may at least double the load,
// and when minPerSecond alone exceeds the recorded rate every failed call gets all its retries. The
// only other cap, the destination breaker's maxRetries (retries in progress at once), exists only when
// the service has a circuitBreaker — as Istio's maxRetries, whose default is effectively no cap.
import type { Figure, Finding } from '../findings.ts';
import type { Edge, LintModel } from '../model.ts';
import { budgetTries, retrying, sidecarsOf, times, type RetryingRoute } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

export const retryWithoutBudget: Rule = {
  id: 'retry-without-budget',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      for (const route of edge.routes.filter(retrying)) {
        const made = unbounded(model, edge, route);
        if (made) found.push(made);
      }
    }
    return found;
  },
};

function unbounded(model: LintModel, edge: Edge, route: RetryingRoute): Finding | undefined {
  const { ratio, minPerSecond } = route.retries.budget;
  const sidecars = sidecarsOf(model, edge.from);
  const rps = edge.observed?.rps;
  const floor = sidecars * minPerSecond;
  const byRatio = ratio >= 1;
  const byFloor = rps !== undefined && rps > 0 && floor >= rps;
  if (!byRatio && !byFloor) return undefined;
  const tries = 1 + route.retries.attempts;
  const cap = retryCap(model, edge.to);
  const origin = route.explicit.budget ? 'config' as const : 'default' as const;
  const reasons = [
    ...(byRatio ? [`ratio ${ratio} lets retries add ${ratio >= route.retries.attempts ? 'every retry the route allows' : `${times(ratio)}× the requests`}`] : []),
    ...(byFloor ? [`minPerSecond ${minPerSecond}${sidecars > 1 ? ` × ${sidecars} sidecars` : ''} = ${times(floor)} retries a second is above the ${times(rps!)} calls a second recorded`] : []),
  ];
  const figures: Figure[] = [
    { name: `route ${route.name} budget ratio`, value: String(ratio), origin },
    { name: `route ${route.name} budget minPerSecond (per sidecar)`, value: String(minPerSecond), origin },
    { name: `${edge.from}'s sidecars`, value: String(sidecars), origin: 'config' },
    { name: `${edge.from} → ${edge.to} tries`, value: String(tries), origin: route.explicit.attempts ? 'config' : 'default' },
    ...(rps !== undefined ? [{ name: `${edge.from} → ${edge.to} rate`, value: `${times(rps)} rps`, origin: 'recording' as const }] : []),
    { name: `tries per call the budget allows ${rps !== undefined ? 'at that rate' : 'at high rates'}`, value: times(budgetTries(route.retries, rps, sidecars)), origin: rps !== undefined ? 'recording' : 'derived' },
    { name: `${edge.to}'s cap on retries in progress (circuitBreaker.maxRetries)`, value: cap.value, origin: cap.origin },
  ];
  return finding(model, 'retry-without-budget', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: route.explicit.budget ? model.where(['routes', routeIndex(model, route.name), 'retries', 'budget']) : route.retriesAt,
    message: `route ${route.name}'s retry budget does not bound ${edge.from}'s retries to ${edge.to}: ${reasons.join('; ')}${cap.none ? ', and nothing else caps them' : `; only ${cap.value} retries in progress at once cap them`}`,
    why: `a budget is what stops a retry storm: when ${edge.to} fails, a sustained stream of calls costs it up to ${tries} tries each, load that comes exactly when it is struggling (Google SRE: keep retries under 10 % of requests; Linkerd's default budget is 20 % + 10/s)`,
    fix: `give route ${route.name} a budget that binds: ratio below 1 (0.1–0.2)${byFloor ? `, and minPerSecond below ${times(rps! / sidecars)} (the recorded rate per sidecar)` : ''}${cap.none ? `; a circuitBreaker on ${edge.to} with a small maxRetries also caps retries in progress` : ''}`,
    figures,
    observed: byFloor,
  });
}

/** The cap on retries in progress to a service: its breaker's maxRetries, when it has a breaker that binds before maxRequests. */
function retryCap(model: LintModel, service: string): { value: string; origin: Figure['origin']; none: boolean } {
  const breaker = model.services.get(service)?.spec.circuitBreaker;
  if (!breaker) return { value: 'none (no circuitBreaker)', origin: 'default', none: true };
  if (breaker.maxRetries >= breaker.maxRequests) return { value: `${breaker.maxRetries} (not below maxRequests ${breaker.maxRequests})`, origin: 'config', none: true };
  return { value: String(breaker.maxRetries), origin: 'config', none: false };
}

function routeIndex(model: LintModel, name: string): number {
  return model.snapshot.config.routes.findIndex((r) => r.name === name);
}
