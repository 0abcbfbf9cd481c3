// Attribution: each failed or slow request at the edge tied to the faults on its trace (or in force on
// the service its failing call went to), to the hop where its failure surfaced and to what the policies
// did there and on the way out; and each fault's impact factor — failures at the edge per injection.
import type { Journal } from '../experiments/journal.ts';
import type { Experiment } from '../experiments/spec.ts';
import { actionName } from '../faults/actions/index.ts';
import { callSucceeded, succeeded } from '../measures.ts';
import { targetsOfStep, type Event } from './common.ts';
import { actedAt, MESH_FAILURE_FLAGS, retryAt, type RouteOf } from './hop-policy.ts';
import type { Attribution, AttributedHop, AttributionRow, FaultImpact, Policy } from './types.ts';

/**
 * Each failed or slow request at the edge, with the faults on its trace, the hop where it surfaced and
 * what the policies did; totals per fault and policy over every call a fault touched; and how many
 * failures each fault, hop and policy explain. `routeOf` reads the run's recorded config.
 */
export function attribute(experiment: Experiment, events: readonly Event[], byRequest: Map<string, Event[]>, sidecarService: Map<string, string>, routeOf: RouteOf = () => undefined): Attribution {
  const entry = experiment.load.entry;
  const slowAfter = experiment.steadyState.find((h) => h.latency?.service === entry)?.latency?.max ?? Infinity;
  const edge = events.filter((e) => e.type === 'request.done' && e.direction === 'inbound' && sidecarService.get(e.sidecar) === entry);
  const rows: AttributionRow[] = [];
  let unattributed = 0;
  const faultSpans = experiment.method.map((step) => ({ id: step.fault.id, targets: [step.fault.match.destination, step.fault.partition?.to].flat().filter((n): n is string => Boolean(n)) }));
  // The first installation (each sidecar and the control plane report one), the last removal.
  const injectedAt = new Map(events.filter((e) => e.type === 'fault.installed').reverse().map((e) => [String(e.faultId), e.time]));
  const removedAt = new Map(events.filter((e) => e.type === 'fault.removed').map((e) => [String(e.faultId), e.time]));
  // Since its injection: a breaker it opened may still refuse calls after its removal.
  const inForce = (service: unknown, time: number) => faultSpans.filter((f) => f.targets.includes(String(service)) && (injectedAt.get(f.id) ?? Infinity) <= time).map((f) => f.id);
  const notRemoved = (id: string, time: number) => time <= (removedAt.get(id) ?? Infinity);
  const actions = new Map(experiment.method.map((step) => [step.fault.id, actionName(step.fault)]));
  const ejections = events.filter((e) => e.type === 'outlier.ejected' || e.type === 'outlier.restored');
  const hopOf = (h: Event): AttributedHop => describeHop(h, sidecarService, routeOf, ejectedAt(ejections, h));
  for (const e of edge) {
    const failed = !callSucceeded(e);
    const slow = (e.durationMs as number) > slowAfter;
    if (!failed && !slow) continue;
    const trace = byRequest.get(String(e.requestId)) ?? [];
    const hops = trace.filter((t) => t.type === 'request.done');
    const applied = trace.filter((t) => t.type === 'fault.applied');
    let faults = [...new Set(applied.map((t) => String(t.faultId)))];
    let via: AttributionRow['via'] = 'trace';
    if (faults.length === 0) {
      // No fault acted on it: did it fail on a service a fault had hit (a breaker it opened, say), or
      // fail while a fault was in force on a service on its path?
      const failing = hops.find((t) => t.direction === 'outbound' && !callSucceeded(t) && inForce(t.service, t.time).length > 0);
      const passing = failing || !failed ? undefined : hops.find((t) => t.direction === 'outbound' && inForce(t.service, t.time).some((id) => notRemoved(id, t.time)));
      const hit = failing ?? passing;
      if (!hit) {
        if (failed) unattributed++;
        continue;
      }
      faults = inForce(hit.service, hit.time).filter((id) => failing || notRemoved(id, hit.time));
      via = 'window';
    }
    const surfacedAt = surfacedHop(hops, entry, sidecarService, via === 'trace' ? (h) => (h.faults as string[]).length > 0 : (h) => inForce(h.service, h.time).length > 0);
    const surfaced = surfacedAt ? hopOf(surfacedAt) : null;
    const path = surfacedAt ? outward(surfacedAt, hops, entry, sidecarService).map(hopOf) : [];
    const first = applied[0];
    const faultHop = first ? `${String(first.source ?? first.sidecar)} → ${String(first.destination)}` : null;
    const named = faults.map((f) => `${f} (${actions.get(f) ?? 'fault'})`).join(', ');
    rows.push({
      requestId: String(e.requestId),
      traceId: (e.traceId as string | null) ?? null,
      at: e.time,
      service: surfacedAt ? calledService(surfacedAt, sidecarService) : String(entry),
      status: e.status as number,
      grpcStatus: (e.grpcStatus as number | null | undefined) ?? null,
      latencyMs: e.durationMs as number,
      flags: [...new Set([...(e.flags as string[]), ...((surfacedAt?.flags as string[] | undefined) ?? [])])],
      faults,
      via,
      policy: policyOf(surfacedAt ?? e),
      faultHop,
      surfaced,
      path,
      explanation: `${named}${faultHop ? ` on ${faultHop}` : ' in force on the path'}; ${surfaced ? `surfaced at ${surfaced.hop} (sidecar ${surfaced.sidecar}) as ${[surfaced.status, ...surfaced.flags].join(' ')}: ${surfaced.how}; retries: ${surfaced.retry.why}` : 'no hop of its trace was recorded'}`,
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
    causes: causesOf(rows),
    unattributed,
  };
}

/** Failed rows counted per fault, surfaced hop, policy that acted there and retry verdict; most first. */
function causesOf(rows: readonly AttributionRow[]): Attribution['causes'] {
  const counted = new Map<string, { faults: readonly string[]; hop: string; sidecar: string; acted: AttributedHop['acted']; retry: AttributedHop['retry']['verdict']; failures: number }>();
  for (const r of rows) {
    const key = causeOf(r);
    if (key === undefined) continue;
    const s = r.surfaced!;
    const cause = counted.get(key) ?? { faults: r.faults, hop: s.hop, sidecar: s.sidecar, acted: s.acted, retry: s.retry.verdict, failures: 0 };
    cause.failures++;
    counted.set(key, cause);
  }
  return [...counted.values()].sort((a, b) => b.failures - a.failures || a.hop.localeCompare(b.hop));
}

/** The cause a failed row counts under (fault, surfaced hop and sidecar, policy, retry verdict); none for a slow one. */
export function causeOf(r: AttributionRow): string | undefined {
  const s = r.surfaced;
  return callSucceeded(r) || !s ? undefined : JSON.stringify([r.faults, s.hop, s.sidecar, s.acted, s.retry.verdict]);
}

/**
 * The hop where a request's failure surfaced: the innermost (farthest from the edge) whose failure the
 * mesh made; else the innermost where a fault acted (`faulted`); else the innermost that failed.
 */
function surfacedHop(hops: readonly Event[], entry: string | undefined, sidecarService: Map<string, string>, faulted: (h: Event) => boolean): Event | undefined {
  const depth = depths(hops, entry);
  const depthOf = (h: Event) => h.direction === 'outbound'
    ? (depth.get(String(h.service)) ?? (depth.get(String(h.source)) ?? 0) + 1)
    // A service's own sidecar sees the call after its caller's did: half a hop deeper.
    : (depth.get(sidecarService.get(h.sidecar) ?? '') ?? 0) + 0.5;
  const innermost = (list: Event[]) => list.sort((a, b) => depthOf(b) - depthOf(a) || a.time - b.time)[0];
  const failed = hops.filter((h) => !callSucceeded(h));
  return innermost(failed.filter((h) => (h.flags as string[]).some((f) => MESH_FAILURE_FLAGS.has(f))))
    ?? innermost(hops.filter(faulted))
    ?? innermost(failed);
}

/** How many calls each service is from the entry, along the trace's outbound hops. */
function depths(hops: readonly Event[], entry: string | undefined): Map<string, number> {
  const depth = new Map<string, number>(entry ? [[entry, 0]] : []);
  const outbound = hops.filter((h) => h.direction === 'outbound');
  for (let round = 0; round < outbound.length; round++) {
    let grew = false;
    for (const h of outbound) {
      const from = depth.get(String(h.source));
      if (from !== undefined && !depth.has(String(h.service))) {
        depth.set(String(h.service), from + 1);
        grew = true;
      }
    }
    if (!grew) break;
  }
  return depth;
}

/** The surfaced hop and then each caller's call on the way out to the edge (the edge itself left out). */
function outward(surfaced: Event, hops: readonly Event[], entry: string | undefined, sidecarService: Map<string, string>): Event[] {
  const path = [surfaced];
  let at = surfaced;
  for (let i = 0; i < hops.length; i++) {
    // An outbound call is made by its source; an inbound hop was reached by the call to its own service.
    const caller = at.direction === 'outbound' ? String(at.source) : sidecarService.get(at.sidecar);
    if (caller === undefined || (at.direction === 'outbound' && caller === entry)) break;
    const calls = hops.filter((h) => h.direction === 'outbound' && h.service === caller && !path.includes(h));
    const next = calls.find((h) => !callSucceeded(h)) ?? calls[0];
    if (!next) break;
    path.push(next);
    at = next;
  }
  return path;
}

function calledService(h: Event, sidecarService: Map<string, string>): string {
  return h.direction === 'outbound' ? String(h.service) : (sidecarService.get(h.sidecar) ?? h.sidecar);
}

function describeHop(h: Event, sidecarService: Map<string, string>, routeOf: RouteOf, ejected: boolean): AttributedHop {
  const route = h.direction === 'outbound' ? routeOf((h.route as string | null | undefined) ?? null) : null;
  const { acted, how } = actedAt(h, route, ejected);
  return {
    hop: `${String(h.source)} → ${calledService(h, sidecarService)}`,
    sidecar: h.sidecar,
    direction: h.direction as AttributedHop['direction'],
    route: (h.route as string | null | undefined) ?? null,
    status: h.status as number,
    grpcStatus: (h.grpcStatus as number | null | undefined) ?? null,
    flags: h.flags as string[],
    attempts: (h.attempts as number) || 1,
    latencyMs: h.durationMs as number,
    acted,
    how,
    // An inbound hop has no route of its own: no retry there.
    retry: h.direction === 'outbound' ? retryAt(h, route, acted) : { verdict: 'not-retriable', why: 'an inbound hop does not retry' },
  };
}

/** Whether outlier detection had an endpoint of the hop's destination out when the hop ended. */
function ejectedAt(ejections: readonly Event[], h: Event): boolean {
  let out = 0;
  for (const e of ejections) {
    if (e.time > h.time) break;
    if (e.service === h.service) out += e.type === 'outlier.ejected' ? 1 : -1;
  }
  return out > 0;
}

/** What the policies did for one call a fault touched, from its flags, status and tries. */
function policyOf(call: Event): Policy {
  const flags = new Set(call.flags as string[]);
  const saved = callSucceeded(call);
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
    const applied = events.filter((e) => e.type === 'fault.applied' && e.faultId === f.id);
    const injected = applied.length;
    const perInstance = new Map<string, number>();
    for (const e of applied) if (typeof e.endpoint === 'string') perInstance.set(e.endpoint, (perInstance.get(e.endpoint) ?? 0) + 1);
    const failedAtEdge = attribution.rows.filter((r) => r.faults.includes(f.id) && !callSucceeded(r)).length;
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
      instances: [...perInstance].map(([endpoint, count]) => ({ endpoint, count })).sort((a, b) => b.count - a.count || a.endpoint.localeCompare(b.endpoint)),
    };
  });
}

