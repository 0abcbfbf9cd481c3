// timeout-below-latency: a hop's bound — its route timeout or per-try timeout — at or below the p99.9
// the recording saw on the call, or less than 10 % above it. A timeout is chosen from the callee's
// latency at an accepted false-timeout rate (AWS: p99.9); below it, normal running already cuts calls,
// and with no headroom a small slowdown cuts many. Needs a recording: without one it says nothing
// rather than guess (research pitfall 8).
import { loadRate, ms } from '../budget.ts';
import type { Finding, Prediction } from '../findings.ts';
import type { Edge, HopRoute, LintModel, Where } from '../model.ts';
import type { EdgeObservation } from '../recording.ts';
import { perTryAt } from '../tries.ts';
import { finding, type Rule } from './rule.ts';

/** Headroom a bound needs over the observed p99.9. */
const HEADROOM = 0.1;
/** Calls below which the recording's p99.9 of an edge is too rough to judge by. */
const MIN_CALLS = 20;

/** A bound of one try or of the whole call on a route, and where it is set. */
interface HopBound {
  readonly kind: 'timeout' | 'per-try timeout';
  readonly ms: number;
  readonly at: Where;
}

export const timeoutBelowLatency: Rule = {
  id: 'timeout-below-latency',
  check(model) {
    if (!model.recording) return [];
    const found: Finding[] = [];
    for (const edge of model.edges) {
      const seen = edge.observed;
      if (!seen || seen.calls < MIN_CALLS) continue;
      for (const route of edge.routes) {
        const bounds: HopBound[] = [];
        if (route.timeoutMs !== undefined) bounds.push({ kind: 'timeout', ms: route.timeoutMs, at: route.timeoutAt });
        if (route.retries?.perTryTimeoutMs !== undefined) bounds.push({ kind: 'per-try timeout', ms: route.retries.perTryTimeoutMs, at: perTryAt(model, route) });
        for (const bound of bounds) {
          if (bound.ms <= seen.p999 * (1 + HEADROOM)) found.push(flag(model, edge, route, seen, bound));
        }
      }
    }
    return found;
  },
};

function flag(model: LintModel, edge: Edge, route: HopRoute, seen: EdgeObservation, bound: HopBound): Finding {
  const above = Math.round((100 * (bound.ms - seen.p999)) / seen.p999);
  const relation = bound.ms <= seen.p999 ? 'at or below' : `only ${above} % above`;
  const retried = bound.kind === 'per-try timeout';
  return finding(model, 'timeout-below-latency', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: bound.at,
    message: `route ${route.name}'s ${bound.kind} (${ms(bound.ms)}) is ${relation} the p99.9 of ${edge.from} → ${edge.to} in the recording (${ms(seen.p999)} over ${seen.calls} calls)`,
    why: retried
      ? `more than 1 try in 1000 is cut in normal running, or will be after a small slowdown of ${edge.to}; each cut try is retried, so the load on ${edge.to} rises with its latency`
      : `more than 1 call in 1000 fails in normal running, or will after a small slowdown of ${edge.to}: a timeout should sit above the callee's p99.9 with room to spare (AWS's false-timeout rate)`,
    fix: `raise route ${route.name}'s ${bound.kind} above ${ms(Math.ceil(seen.p999 * (1 + HEADROOM)))} (p99.9 + ${100 * HEADROOM} %) within what ${edge.from}'s callers allow, or find why ${edge.to} is this slow`,
    figures: [
      { name: `route ${route.name} ${bound.kind}`, value: ms(bound.ms), origin: 'config' },
      { name: `${edge.from} → ${edge.to} p99.9`, value: ms(seen.p999), origin: 'recording' },
      { name: `${edge.from} → ${edge.to} p99`, value: ms(seen.p99), origin: 'recording' },
      { name: `${edge.from} → ${edge.to} calls`, value: String(seen.calls), origin: 'recording' },
    ],
    observed: true,
    // A per-try timeout's cut tries are retried: a slowdown shows as retries, which no hypothesis counts.
    predicts: retried ? undefined : predict(model, edge, route, seen, bound.ms),
  });
}

/**
 * The callee 20 % of its p99.9 slower at its inbound, for this caller: every call that took more than
 * the timeout less that in the recording now times out, and the availability a p99.9 timeout allows
 * (99.9 %) fails. Held 30 s, so that a run has calls enough for the tail to show.
 */
function predict(model: LintModel, edge: Edge, route: HopRoute, seen: EdgeObservation, boundMs: number): Prediction {
  const shiftMs = Math.max(1, Math.round(seen.p999 * 0.2));
  return {
    fault: { match: { source: edge.from, destination: edge.to }, at: 'inbound', delay: { fixed: ms(shiftMs) } },
    durationMs: 30_000,
    entry: edge.from,
    rate: loadRate(model, edge.from),
    steadyState: [{ availability: { service: edge.to, min: 99.9 } }],
    expect: [],
    outcome: `with ${edge.to} ${ms(shiftMs)} slower for ${edge.from}, the calls that took over ${ms(Math.max(0, boundMs - shiftMs))} in the recording (at least its slowest 0.1 %) hit route ${route.name}'s timeout of ${ms(boundMs)}`,
    signature: { hop: `${edge.from} → ${edge.to}`, acted: ['route-timeout'] },
  };
}
