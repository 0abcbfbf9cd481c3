// layered-retries: the app retries a call (its services[].calls[].retries, or repeats seen in a
// recording) and the mesh's route retries it too: the tries multiply on one hop, and the app's own
// have no budget and no backoff the mesh knows of. Istio's bookinfo: productpage's hidden retry in
// code doubled the mesh's timeout. Google SRE and AWS both say: retry at one layer.
import { loadRate } from '../budget.ts';
import type { Finding } from '../findings.ts';
import type { Edge, LintModel } from '../model.ts';
import { entryOf, mostTries, retriedFailure, type RetryingRoute } from '../retries.ts';
import { finding, type Rule } from './rule.ts';

export const layeredRetries: Rule = {
  id: 'layered-retries',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      const route = mostTries(edge);
      const declared = edge.app?.retries ?? 0;
      const repeats = edge.observed?.appRepeats ?? 0;
      if (!route || (declared === 0 && repeats === 0)) continue;
      found.push(report(model, edge, route, declared, repeats));
    }
    return found;
  },
};

function report(model: LintModel, edge: Edge, route: RetryingRoute, declared: number, repeats: number): Finding {
  const mesh = 1 + route.retries.attempts;
  const app = `${edge.from}'s app ${declared > 0 ? `retries ${declared} time${declared > 1 ? 's' : ''} (services[].calls)` : 'declares no retries'}${repeats > 0 ? `${declared > 0 ? ' and' : ', but'} the recording shows ${repeats} repeated call${repeats > 1 ? 's' : ''} to ${edge.to} within one request` : ''}`;
  const tries = (1 + declared) * mesh;
  const entry = entryOf(model, [edge.from, edge.to]);
  const failure = retriedFailure(route.retries, 'attempt', edge.from, edge.to);
  return finding(model, 'layered-retries', {
    service: edge.from,
    path: [edge.from, edge.to],
    route: route.name,
    at: route.retriesAt,
    message: `${app}, and route ${route.name} retries each call up to ${route.retries.attempts} time${route.retries.attempts > 1 ? 's' : ''}${declared > 0 ? `: ${1 + declared} × ${mesh} = ${tries} tries at ${edge.to} per call` : ''}`,
    why: `retries at two layers multiply on one hop, and the app's have no budget and no backoff the mesh can see: a failing ${edge.to} takes ${declared > 0 ? tries : `${mesh}× per app try`} tries per call, and the caller waits for all of them (Istio's bookinfo: a hidden app retry doubled the mesh's timeout). ${repeats > 0 && declared === 0 ? 'Repeated calls within a request may also be several calls the app makes on purpose: check its code. ' : ''}Google SRE and AWS: retry at one layer`,
    fix: `retry at one layer: drop the app's retries on ${edge.to} (the mesh's have a budget and jittered backoff) and declare retries: 0 in ${edge.from}'s calls, or drop route ${route.name}'s retries`,
    figures: [
      { name: `${edge.from} → ${edge.to} app tries`, value: String(1 + declared), origin: 'app' },
      ...(repeats > 0 ? [{ name: `${edge.from} → ${edge.to} repeated calls recorded`, value: `${repeats} of ${edge.observed!.calls}`, origin: 'recording' as const }] : []),
      { name: `route ${route.name} tries`, value: String(mesh), origin: route.explicit.attempts ? 'config' : 'default' },
      { name: 'tries per call at worst', value: String(tries), origin: 'derived' },
    ],
    observed: repeats > 0,
    predicts: failure && {
      fault: failure,
      durationMs: 10_000,
      entry,
      rate: loadRate(model, entry),
      steadyState: [{ availability: { service: edge.to, min: 99 } }],
      expect: [],
      outcome: `with every try from ${edge.from} to ${edge.to} failing, each of ${edge.from}'s calls costs ${tries} tries: ${mesh} by the mesh, ${declared > 0 ? `for each of the app's ${1 + declared}` : 'for each the app makes'}`,
      signature: { hop: `${edge.from} → ${edge.to}`, acted: ['retry-limit', 'fault'] },
    },
  });
}
