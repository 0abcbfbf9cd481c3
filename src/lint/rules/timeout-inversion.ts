// timeout-inversion: a caller gives up on a call before the callee's own timeouts and retries to its
// dependencies can act (Istio's bookinfo: productpage allows reviews 3 s + one retry, reviews allows
// ratings 10 s). Seen only along a path, never service by service.
import { loadRate, ms, needMs, waitBound, type Bound } from '../budget.ts';
import type { Finding, Prediction } from '../findings.ts';
import type { Edge, LintModel } from '../model.ts';
import { finding, type Rule } from './rule.ts';

export const timeoutInversion: Rule = {
  id: 'timeout-inversion',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      const bound = waitBound(edge);
      const need = needMs(model, edge.to);
      if (!bound || !need || bound.ms >= need.ms) continue;
      const deepest = need.calls.reduce((a, b) => (b.bound.ms > a.bound.ms ? b : a));
      const callerSide = bound.by === 'app' ? `its app's timeout of ${ms(bound.ms)}` : `route ${bound.route!.name}'s ${bound.route!.timeoutMs !== undefined ? 'timeout' : 'tries × per-try timeout'} of ${ms(bound.ms)}`;
      found.push(finding(model, 'timeout-inversion', {
        service: edge.from,
        path: [edge.from, edge.to, deepest.edge.to],
        route: bound.route?.name,
        at: bound.by === 'app' ? edge.app!.at : bound.route!.timeoutMs !== undefined ? bound.route!.timeoutAt : bound.route!.retriesAt,
        message: `${edge.from} gives up on ${edge.to} after ${ms(bound.ms)} (${callerSide}), but ${edge.to} may take ${ms(need.ms)} on its own calls (${describeNeed(model, edge.to, need.calls)})`,
        why: `when ${deepest.edge.to} is slow, ${edge.from} has failed the request before ${edge.to}'s own timeouts and retries can act: they never matter, and ${edge.to} goes on working for a caller that has left`,
        fix: `give ${edge.from}'s call to ${edge.to} more than ${ms(need.ms)}, or lower ${edge.to}'s budget to ${deepest.edge.to} (timeout, or tries × per-try timeout) below ${ms(bound.ms)}`,
        figures: [
          { name: `${edge.from} → ${edge.to} wait`, value: ms(bound.ms), origin: bound.by === 'app' ? 'app' : 'config' },
          { name: `${edge.to} may take`, value: ms(need.ms), origin: 'derived' },
          ...need.calls.map((c) => ({ name: `${edge.to} → ${c.edge.to} wait`, value: ms(c.bound.ms), origin: c.bound.by === 'app' ? 'app' as const : 'config' as const })),
        ],
        predicts: predict(model, edge, bound, deepest),
      }));
    }
    return found;
  },
};

function describeNeed(model: LintModel, service: string, calls: readonly { edge: Edge; bound: Bound }[]): string {
  const parts = calls.map((c) => `${c.edge.to} ${ms(c.bound.ms)}`);
  if (parts.length === 1) return parts[0]!;
  return `${parts.join(model.services.get(service)?.callOrder === 'sequential' ? ' + ' : ', ')}, ${model.services.get(service)?.callOrder === 'sequential' ? 'one after another' : 'at once: the slowest'}`;
}

/**
 * The game day: the deepest callee slowed at its inbound, for the calls of the middle service. When one
 * try of the middle service may last longer than the caller waits, the delay sits between the two:
 * the middle service would succeed, late; else just above the middle's try, so its retries go on past
 * the caller's patience. Either way the failures surface at the caller's hop, where its bound acts.
 */
function predict(model: LintModel, edge: Edge, bound: Bound, deepest: { edge: Edge; bound: Bound }): Prediction {
  const inner = deepest.edge;
  const single = Math.max(...inner.routes.map((r) => r.retries?.perTryTimeoutMs ?? r.timeoutMs ?? Infinity), 0);
  const singleTry = Math.min(single, inner.app?.timeoutMs ?? Infinity, deepest.bound.ms);
  const margin = Math.max(50, Math.round((deepest.bound.ms - bound.ms) / 10));
  const delayMs = singleTry > bound.ms + 2 * margin ? Math.round((bound.ms + singleTry) / 2) : Math.round(singleTry + margin);
  const rate = loadRate(model, edge.from);
  return {
    fault: { match: { source: inner.from, destination: inner.to }, at: 'inbound', delay: { fixed: ms(delayMs) } },
    durationMs: 10_000,
    entry: edge.from,
    rate,
    steadyState: [{ availability: { service: edge.to, min: 99 } }],
    expect: [],
    outcome: `with ${inner.to} ${ms(delayMs)} slow for ${inner.from}, ${edge.from}'s calls to ${edge.to} fail at ${ms(bound.ms)} (${bound.by === 'app' ? 'the app gives up' : 'route timeout'}) while ${edge.to} is still waiting on ${inner.to}`,
    signature: { hop: `${edge.from} → ${edge.to}`, acted: bound.by === 'app' ? ['caller-left'] : ['route-timeout', 'timeout', 'per-try-timeout'] },
  };
}
