// app-timeout-below-mesh: the app gives up on a call before the mesh's own retries of it can end (the
// demo: cart gives payments 800 ms; route payments-canary runs up to 3 tries of 300 ms with backoff,
// 975 ms). When the callee is slow, the mesh's last tries are cut by the app leaving: retries the route
// promises, the caller never waits for. Only where the route retries a slow try (a per-try timeout and
// a retryOn covering it): without one, its retries follow fast failures, which fit.
import { loadRate, maxBackoffMs, ms, triesOf } from '../budget.ts';
import type { Finding, Prediction } from '../findings.ts';
import type { Edge, HopRoute, LintModel } from '../model.ts';
import { perTryToFit, retriesSlowTries, slowEveryTry, triesFigure, triesFitting, tryEndsMs } from '../tries.ts';
import { finding, type Rule } from './rule.ts';

export const appTimeoutBelowMesh: Rule = {
  id: 'app-timeout-below-mesh',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      const appMs = edge.app?.timeoutMs;
      if (appMs === undefined) continue;
      for (const route of edge.routes) {
        const policy = retriesSlowTries(route);
        const perTryMs = policy?.perTryTimeoutMs;
        if (!policy || perTryMs === undefined) continue;
        const triesMs = tryEndsMs(policy, perTryMs).at(-1)!;
        const meshMs = Math.min(triesMs, route.timeoutMs ?? Infinity);
        if (appMs >= meshMs) continue;
        const fit = triesFitting(policy, perTryMs, appMs);
        const tries = triesOf(route);
        const cutBy = route.timeoutMs !== undefined && route.timeoutMs < triesMs ? ` (its timeout of ${ms(route.timeoutMs)} cuts them first)` : '';
        found.push(finding(model, 'app-timeout-below-mesh', {
          service: edge.from,
          path: [edge.from, edge.to],
          route: route.name,
          at: edge.app!.at,
          message: `${edge.from} gives ${edge.to} ${ms(appMs)} (its app's timeout), but route ${route.name}'s ${tries} tries of ${ms(perTryMs)} with up to ${ms(maxBackoffMs(policy))} of backoff may take ${ms(meshMs)}${cutBy}: only ${fit} of ${tries} tries fit before the app leaves`,
          why: `when ${edge.to} is slow, the mesh retries each try its per-try timeout cuts, but ${edge.from} has left during try ${fit + 1}: the retries the route declares beyond it never get their chance, and the failure is the app's own timeout, not the mesh's answer`,
          fix: `give ${edge.from}'s call to ${edge.to} at least ${ms(meshMs)}, or fit route ${route.name}'s tries in ${ms(appMs)}: a per-try timeout of ${ms(perTryToFit(policy, appMs))} or fewer tries`,
          figures: [
            { name: `${edge.from} → ${edge.to} app timeout`, value: ms(appMs), origin: 'app' },
            { name: `route ${route.name} per-try timeout`, value: ms(perTryMs), origin: 'config' },
            triesFigure(route),
            { name: 'longest backoff, in all', value: ms(maxBackoffMs(policy)), origin: 'derived' },
            ...(route.timeoutMs !== undefined ? [{ name: `route ${route.name} timeout`, value: ms(route.timeoutMs), origin: 'config' as const }] : []),
            { name: 'the mesh may take', value: ms(meshMs), origin: 'derived' },
            { name: 'tries that fit in the app\'s timeout', value: String(fit), origin: 'derived' },
          ],
          predicts: predict(model, edge, route, perTryMs, appMs, fit),
        }));
      }
    }
    return found;
  },
};

/**
 * Every try of the route slowed past its per-try timeout, at the attempt point of the caller's sidecar:
 * the mesh cuts and retries each, and the app leaves first. The failures surface at the caller's hop
 * as the caller leaving (with the app's timeout above the mesh's, they would be the mesh's retry limit).
 */
function predict(model: LintModel, edge: Edge, route: HopRoute, perTryMs: number, appMs: number, fit: number): Prediction {
  return slowEveryTry(model, edge, route, perTryMs, (delay) => ({
    outcome: `with every try of route ${route.name} ${delay} slow, the per-try timeout cuts ${fit === 1 ? 'the first try' : `the first ${fit} tries`} and ${edge.from} leaves at ${ms(appMs)}, during try ${fit + 1}: its calls to ${edge.to} fail as the caller leaving, not as the mesh's retry limit`,
    acted: ['caller-left'],
  }));
}
