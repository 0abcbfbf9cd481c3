// attempts-exceed-budget: a route's tries of a full per-try timeout each, with their longest backoff,
// outlast its timeout, so when the callee is slow the later tries never run: the declared count
// misleads whoever reads it. Info: the route still retries, and fast failures fit; a per-try timeout
// at or above the route timeout is per-try-ge-route-timeout's, not this rule's.
import { loadRate, maxBackoffMs, ms, triesOf } from '../budget.ts';
import type { Finding, Prediction } from '../findings.ts';
import type { Edge, HopRoute, LintModel } from '../model.ts';
import { perTryToFit, retriesSlowTries, routesOfCalls, slowEveryTry, triesFigure, triesFitting, tryEndsMs } from '../tries.ts';
import { finding, type Rule } from './rule.ts';

export const attemptsExceedBudget: Rule = {
  id: 'attempts-exceed-budget',
  check(model) {
    const found: Finding[] = [];
    for (const { route, edges } of routesOfCalls(model)) {
      const policy = retriesSlowTries(route);
      const perTryMs = policy?.perTryTimeoutMs;
      const timeoutMs = route.timeoutMs;
      if (!policy || perTryMs === undefined || timeoutMs === undefined || perTryMs >= timeoutMs) continue;
      const triesMs = tryEndsMs(policy, perTryMs).at(-1)!;
      if (triesMs <= timeoutMs) continue;
      const fit = triesFitting(policy, perTryMs, timeoutMs);
      const tries = triesOf(route);
      const edge = edges[0]!;
      found.push(finding(model, 'attempts-exceed-budget', {
        service: edge.from,
        path: [edge.from, edge.to],
        route: route.name,
        at: route.retriesAt,
        message: `route ${route.name} declares ${tries} tries of ${ms(perTryMs)} with up to ${ms(maxBackoffMs(policy))} of backoff (${ms(triesMs)}) within its ${ms(timeoutMs)} timeout: only ${fit} slow ${fit === 1 ? 'try fits' : 'tries fit'}`,
        why: `when ${edge.to} is slow, the route timeout ends the call before try ${fit + 1} has its full ${ms(perTryMs)}, and the retry layer makes no retry after it: of the ${tries} tries declared, ${fit} run in full`,
        fix: `make the tries fit: a per-try timeout of ${ms(perTryToFit(policy, timeoutMs))} or less, ${fit} ${fit === 1 ? 'try' : 'tries'} (attempts: ${fit - 1}), or a timeout of at least ${ms(triesMs)}`,
        figures: [
          { name: `route ${route.name} timeout`, value: ms(timeoutMs), origin: 'config' },
          { name: `route ${route.name} per-try timeout`, value: ms(perTryMs), origin: 'config' },
          triesFigure(route),
          { name: 'longest backoff, in all', value: ms(maxBackoffMs(policy)), origin: 'derived' },
          { name: 'the tries may take', value: ms(triesMs), origin: 'derived' },
          { name: 'slow tries that fit', value: String(fit), origin: 'derived' },
        ],
        predicts: predict(model, edge, route, perTryMs, fit),
      }));
    }
    return found;
  },
};

/**
 * Every try slowed past its per-try timeout at the caller's attempt point: the calls fail at the route
 * timeout after `fit` + 1 tries (attribution: no time left), not at the retry limit after all of them.
 */
function predict(model: LintModel, edge: Edge, route: HopRoute, perTryMs: number, fit: number): Prediction {
  return slowEveryTry(model, edge, route, perTryMs, (delay) => ({
    outcome: `with every try of route ${route.name} ${delay} slow, ${edge.from}'s calls to ${edge.to} fail at the route timeout ${ms(route.timeoutMs!)} during try ${fit + 1} of the ${triesOf(route)} declared`,
    acted: ['route-timeout'],
  }));
}
