// The fault propagation graph: calls between services during fault windows, their errors, and how many
// were propagated — caused by a fault that acted on another service than the one called.
import type { LoadRecord } from '../experiments/load.ts';
import type { Experiment } from '../experiments/spec.ts';
import { callSucceeded, succeeded } from '../measures.ts';
import { targetsOfStep, type Event } from './common.ts';
import type { AnalysisWindow, Propagation } from './types.ts';

export function propagate(experiment: Experiment, events: readonly Event[], load: readonly LoadRecord[], byRequest: Map<string, Event[]>, sidecarService: Map<string, string>, windows: AnalysisWindow[]): Propagation {
  const faulted = new Set(experiment.method.flatMap((_, i) => targetsOfStep(experiment, i)));
  const inFault = (t: number) => windows.some((w) => w.kind === 'fault' && t >= w.from && t < w.to);
  const edges = new Map<string, { from: string; to: string; calls: number; errors: number; propagated: number }>();
  for (const e of events) {
    if (e.type !== 'request.done' || e.direction !== 'outbound' || !e.service || !inFault(e.time)) continue;
    const from = sidecarService.get(e.sidecar) ?? String(e.source);
    const to = String(e.service);
    const key = `${from}\u0000${to}`;
    let edge = edges.get(key);
    if (!edge) edges.set(key, (edge = { from, to, calls: 0, errors: 0, propagated: 0 }));
    edge.calls++;
    if (callSucceeded(e)) continue;
    edge.errors++;
    // Propagated: the fault that caused it acted on another service than the one called here.
    const acted = (byRequest.get(String(e.requestId)) ?? []).filter((t) => t.type === 'fault.applied');
    if (acted.some((t) => t.destination !== to)) edge.propagated++;
  }
  const entry = experiment.load.entry;
  const names = new Set([...(entry ? [entry] : []), ...[...edges.values()].flatMap((e) => [e.from, e.to])]);
  // The entry service's errors are the load's (what its callers, the users, saw).
  const edgeErrors = (service: string) => (service === entry ? load.filter((r) => inFault(r.t) && !callSucceeded(r)).length : [...edges.values()].filter((e) => e.to === service).reduce((s, e) => s + e.errors, 0));
  return {
    nodes: [...names].sort().map((service) => ({ service, faulted: faulted.has(service), errors: edgeErrors(service) })),
    edges: [...edges.values()].sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to)),
  };
}

