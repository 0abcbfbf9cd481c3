// Attribution: each failed or slow request at the edge tied to the faults on its trace (or in force on
// the service its failing call went to) and to what the policies did with it; and each fault's impact
// factor — failures at the edge per injection.
import type { Journal } from '../experiments/journal.ts';
import type { Experiment } from '../experiments/spec.ts';
import { actionName } from '../faults/actions/index.ts';
import { succeeded } from '../measures.ts';
import { targetsOfStep, type Event } from './common.ts';
import type { Attribution, AttributionRow, FaultImpact, Policy } from './types.ts';

/**
 * Each failed or slow request at the edge, with the faults on its trace and what the policies did;
 * and totals per fault and policy over every call a fault touched.
 */
export function attribute(experiment: Experiment, events: readonly Event[], byRequest: Map<string, Event[]>, sidecarService: Map<string, string>): Attribution {
  const entry = experiment.load.entry;
  const slowAfter = experiment.steadyState.find((h) => h.latency?.service === entry)?.latency?.max ?? Infinity;
  const edge = events.filter((e) => e.type === 'request.done' && e.direction === 'inbound' && sidecarService.get(e.sidecar) === entry);
  const rows: AttributionRow[] = [];
  let unattributed = 0;
  const faultSpans = experiment.method.map((step) => ({ id: step.fault.id, targets: [step.fault.match.destination, step.fault.partition?.to].flat().filter((n): n is string => Boolean(n)) }));
  const injectedAt = new Map(events.filter((e) => e.type === 'fault.installed').map((e) => [String(e.faultId), e.time]));
  for (const e of edge) {
    const failed = !succeeded(e.status as number);
    const slow = (e.durationMs as number) > slowAfter;
    if (!failed && !slow) continue;
    const trace = byRequest.get(String(e.requestId)) ?? [];
    let faults = [...new Set(trace.filter((t) => t.type === 'fault.applied').map((t) => String(t.faultId)))];
    let via: AttributionRow['via'] = 'trace';
    let faultedCall = trace.find((t) => t.type === 'request.done' && t.direction === 'outbound' && (t.faults as string[]).length > 0);
    if (faults.length === 0) {
      // No fault acted on it: did it fail on a service a fault had hit (a breaker it opened, say)?
      const failing = trace.find((t) => t.type === 'request.done' && t.direction === 'outbound' && !succeeded(t.status as number) && faultSpans.some((f) => f.targets.includes(String(t.service)) && (injectedAt.get(f.id) ?? Infinity) <= t.time));
      if (!failing) {
        if (failed) unattributed++;
        continue;
      }
      faults = faultSpans.filter((f) => f.targets.includes(String(failing.service)) && (injectedAt.get(f.id) ?? Infinity) <= failing.time).map((f) => f.id);
      faultedCall = failing;
      via = 'window';
    }
    const call = faultedCall ?? e;
    rows.push({
      requestId: String(e.requestId),
      traceId: (e.traceId as string | null) ?? null,
      at: e.time,
      service: String(call.service ?? entry),
      status: e.status as number,
      latencyMs: e.durationMs as number,
      flags: [...new Set([...(e.flags as string[]), ...(call.flags as string[])])],
      faults,
      via,
      policy: policyOf(call),
    });
  }
  rows.sort((a, b) => a.at - b.at);
  const totals = new Map<string, number>();
  for (const call of events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && (e.faults as string[]).length > 0)) {
    for (const fault of new Set(call.faults as string[])) {
      const key = `${fault}\u0000${policyOf(call)}`;
      totals.set(key, (totals.get(key) ?? 0) + 1);
    }
  }
  return {
    rows: rows.slice(0, 500),
    totals: [...totals].map(([key, count]) => {
      const [fault, policy] = key.split('\u0000') as [string, Policy];
      return { fault, policy, count };
    }).sort((a, b) => a.fault.localeCompare(b.fault) || b.count - a.count),
    unattributed,
  };
}

/** What the policies did for one call a fault touched, from its flags, status and tries. */
function policyOf(call: Event): Policy {
  const flags = new Set(call.flags as string[]);
  const saved = succeeded(call.status as number);
  const attempts = (call.attempts as number) ?? 1;
  if (saved) return attempts > 1 ? 'retried-and-saved' : 'no-policy-acted';
  if (flags.has('UBX')) return 'budget-exhausted';
  if (flags.has('UO')) return 'breaker-rejected';
  if (flags.has('UT')) return 'timed-out';
  if (attempts > 1 || flags.has('URX')) return 'retried-and-failed';
  return 'not-retried';
}

export function impacts(experiment: Experiment, journal: Journal, events: readonly Event[], _byRequest: Map<string, Event[]>, attribution: Attribution): FaultImpact[] {
  return journal.faults.map((f) => {
    const injected = events.filter((e) => e.type === 'fault.applied' && e.faultId === f.id).length;
    const failedAtEdge = attribution.rows.filter((r) => r.faults.includes(f.id) && !succeeded(r.status)).length;
    const step = experiment.method[f.step]!;
    return {
      id: f.id,
      action: actionName(step.fault),
      targets: targetsOfStep(experiment, f.step),
      injectedAt: f.injectedAt ? Date.parse(f.injectedAt) : null,
      removedAt: f.removedAt ? Date.parse(f.removedAt) : null,
      injected,
      failedAtEdge,
      factor: injected === 0 ? null : failedAtEdge / injected,
    };
  });
}

