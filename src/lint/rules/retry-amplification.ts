// retry-amplification: along a call path, every hop's tries (the app's × the mesh's) multiply, so a
// failing service at the bottom takes the product for each request at the top — 3 × 3 × 3 = 27, the
// Google SRE book's 4 × 4 × 4 = 64. The retry budgets bound the sustained factor of a hop to about
// 1 + ratio once its rate is well above minPerSecond; below that, the worst case stands.
import { edgeTries, loadRate } from '../budget.ts';
import type { Figure, Finding, Prediction } from '../findings.ts';
import { edgeOf, paths, type Edge, type LintModel } from '../model.ts';
import { budgetTries, entryOf, mostTries, retriedFailure, sidecarsOf, times } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

const WARN_ABOVE = 4;
const ERROR_ABOVE = 10;
/** The rate a hop is shown at when no recording says (the budget's floor makes the bound depend on it). */
const ASSUMED_RPS = 10;

export const retryAmplification: Rule = {
  id: 'retry-amplification',
  check(model) {
    const found = new Map<string, Finding>();
    for (const path of paths(model)) {
      const hops = path.slice(1).map((to, i) => edgeOf(model, path[i]!, to)!);
      const deepest = hops.findLastIndex((e) => edgeTries(e) > 1);
      if (deepest < 0) continue;
      const chain = hops.slice(0, deepest + 1);
      const layers = chain.filter((e) => (e.app?.retries ?? 0) > 0).length + chain.filter((e) => mostTries(e) !== undefined).length;
      const worst = product(chain.map(edgeTries));
      if (layers < 2 || worst <= WARN_ABOVE) continue;
      const key = path.slice(0, deepest + 2).join('\u0000');
      if (!found.has(key)) found.set(key, amplified(model, chain, worst));
    }
    return [...found.values()];
  },
};

function amplified(model: LintModel, chain: readonly Edge[], worst: number): Finding {
  const path = [chain[0]!.from, ...chain.map((e) => e.to)];
  const leaf = path.at(-1)!;
  const top = chain.find((e) => edgeTries(e) > 1)!;
  const topRoute = mostTries(top);
  const highRate = product(chain.map((e) => bounded(model, e, undefined)));
  const recorded = chain.every((e) => e.observed !== undefined);
  const atRate = product(chain.map((e) => bounded(model, e, e.observed?.rps ?? ASSUMED_RPS)));
  const rateWords = recorded ? 'at the recorded rates' : `at ${ASSUMED_RPS} rps a hop`;
  const observed = recorded ? product(chain.map((e) => e.observed!.calls === 0 ? 1 : (e.observed!.calls + e.observed!.meshRetries) / Math.max(1, e.observed!.calls - e.observed!.appRepeats))) : undefined;
  const figures: Figure[] = [
    ...chain.flatMap((e): Figure[] => {
      const route = mostTries(e);
      return [
        ...((e.app?.retries ?? 0) > 0 ? [{ name: `${e.from} → ${e.to} app tries`, value: String(1 + e.app!.retries), origin: 'app' as const }] : []),
        { name: `${e.from} → ${e.to} mesh tries${route ? ` (route ${route.name}, on ${[...route.retries.retryOn].join(', ')})` : ''}`, value: String(route ? 1 + route.retries.attempts : 1), origin: route && !route.explicit.attempts ? 'default' as const : 'config' as const },
      ];
    }),
    { name: `tries at ${leaf} per request at ${path[0]}, worst case`, value: times(worst), origin: 'derived' },
    { name: 'bounded by the retry budgets, at high rates (1 + ratio a hop)', value: times(highRate), origin: 'derived' },
    { name: `bounded by the retry budgets, ${rateWords}`, value: times(atRate), origin: recorded ? 'recording' : 'derived' },
    ...(observed !== undefined ? [{ name: 'tries per call in the recording, multiplied along the path', value: times(observed), origin: 'recording' as const }] : []),
  ];
  const deepestHop = chain.at(-1)!;
  return finding(model, 'retry-amplification', {
    severity: worst > ERROR_ABOVE ? 'error' : 'warning',
    service: top.from,
    path,
    route: topRoute?.name,
    at: topRoute ? topRoute.retriesAt : top.app!.at,
    message: `retries multiply along ${path.join(' → ')}: ${chain.map(edgeTries).join(' × ')} = ${times(worst)} tries at ${leaf} per request at ${path[0]} at worst; the budgets bound it to ${times(highRate)} at high rates, ${times(atRate)} ${rateWords}${observed !== undefined ? `; recorded ${times(observed)}` : ''}`,
    why: `when ${leaf} fails, every layer above retries the failures of the one below: ${leaf} takes ${times(worst)}× its load exactly when it is struggling, and the retries keep it there after the trigger is gone (Google SRE: 4 tries at 3 layers is 64 at the bottom). A budget bounds a hop to about 1 + ratio only when its rate is well above minPerSecond × its sidecars; app retries have no budget at all`,
    fix: `retry at one layer: keep the retries of ${deepestHop.from} → ${deepestHop.to}, the hop just above the failure, and drop or lower those above (${chain.slice(0, -1).filter((e) => edgeTries(e) > 1).map((e) => `${e.from} → ${e.to}`).join(', ') || 'the app\'s own'}), so the product stays at ${WARN_ABOVE} or below`,
    figures,
    observed: recorded,
    predicts: predict(model, path, chain),
  });
}

/** A hop's tries per call under its budget at a rate (undefined: at high rates): the app's × the mesh's bounded ones. */
function bounded(model: LintModel, edge: Edge, rps: number | undefined): number {
  const route = mostTries(edge);
  const mesh = route ? budgetTries(route.retries, rps, sidecarsOf(model, edge.from)) : 1;
  return (1 + (edge.app?.retries ?? 0)) * mesh;
}

function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

/** The game day: the leaf fails every call of its caller for 10 s; the tries pile up from the entry down. */
function predict(model: LintModel, path: readonly string[], chain: readonly Edge[]): Prediction {
  const leafHop = chain.at(-1)!;
  const entry = entryOf(model, path);
  const fromEntry = product(chain.slice(Math.max(0, path.indexOf(entry))).map(edgeTries));
  const route = mostTries(leafHop);
  const failure = (route && retriedFailure(route.retries, 'inbound', leafHop.from, leafHop.to)) ?? { match: { source: leafHop.from, destination: leafHop.to }, at: 'inbound', abort: { status: 503 } };
  return {
    fault: failure,
    durationMs: 10_000,
    entry,
    rate: loadRate(model, entry),
    steadyState: [{ availability: { service: leafHop.to, min: 99 } }],
    expect: [],
    outcome: `with ${leafHop.to} failing every call from ${leafHop.from}, each request at ${entry} reaches ${leafHop.to} up to ${times(fromEntry)} times (the product of the tries on the way), until the budgets are spent`,
    signature: { hop: `${leafHop.from} → ${leafHop.to}`, acted: ['retry-limit', 'app', 'fault'] },
  };
}
