// backoff-missing: retries whose backoff leaves no time between tries. The retry layer always jitters
// (proxy/backoff.ts: full jitter, a wait drawn from [0, min(max, base × 2^(n-1))) ), but jitter over a
// few milliseconds spreads nothing: the retry lands on the failing service at once, before a transient
// failure can clear, and the retries of many callers arrive together.
import { ms } from '../budget.ts';
import type { Finding } from '../findings.ts';
import type { Edge, LintModel } from '../model.ts';
import { backoffCeilings, retrying, type RetryingRoute } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

/** Below this, the first retry's wait is effectively none. */
const IMMEDIATE_MS = 10;

export const backoffMissing: Rule = {
  id: 'backoff-missing',
  check(model) {
    const found: Finding[] = [];
    const seen = new Set<string>();
    for (const edge of model.edges) {
      for (const route of edge.routes.filter(retrying)) {
        const key = `${edge.from}\u0000${route.name}`;
        if (seen.has(key) || backoffCeilings(route.retries)[0]! >= IMMEDIATE_MS) continue;
        seen.add(key);
        found.push(report(model, edge, route));
      }
    }
    return found;
  },
};

function report(model: LintModel, edge: Edge, route: RetryingRoute): Finding {
  const { baseMs, maxMs } = route.retries.backoff;
  const ceilings = backoffCeilings(route.retries);
  const immediate = ceilings.filter((c) => c < IMMEDIATE_MS).length;
  const i = model.snapshot.config.routes.findIndex((r) => r.name === route.name);
  const origin = route.explicit.backoff ? 'config' as const : 'default' as const;
  return finding(model, 'backoff-missing', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: route.explicit.backoff && i >= 0 ? model.where(['routes', i, 'retries', 'backoff']) : route.retriesAt,
    message: `route ${route.name} retries ${edge.from}'s calls to ${edge.to} with backoff base ${ms(baseMs)}, max ${ms(maxMs)}: ${immediate} of ${ceilings.length} retr${ceilings.length > 1 ? 'ies wait' : 'y waits'} under ${IMMEDIATE_MS}ms (random(0, ${ceilings.map(ms).join('), random(0, ')}))`,
    why: `a retry that follows at once finds ${edge.to} in the state that failed the try — a restart, a full queue, a blip of the network — and adds load to it; faultline always jitters (full jitter), but jitter over ${ms(Math.max(...ceilings))} spreads nothing, so many callers' retries arrive together (AWS: capped exponential backoff with jitter)`,
    fix: `give route ${route.name} a backoff that waits: base 25ms or more (faultline's default is 25ms, max 250ms), and max at least a few times base`,
    figures: [
      { name: `route ${route.name} backoff base`, value: ms(baseMs), origin },
      { name: `route ${route.name} backoff max`, value: ms(maxMs), origin },
      { name: 'longest waits of its retries (full jitter below each)', value: ceilings.map(ms).join(', '), origin: 'derived' },
    ],
  });
}
