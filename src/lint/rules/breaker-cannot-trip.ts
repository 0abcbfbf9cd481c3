// breaker-cannot-trip: a circuit breaker that cannot act on the traffic it gets. Each caller's sidecar
// keeps its own breaker per destination (the service, or each subset a route names) and judges every
// try (the breaker sits inside the retry loop: retries add failures, they do not hide them), but only
// once the try ends: a 5xx, a connect failure, a reset or a mesh timeout is a failure; a caller that
// leaves counts neither way. So a breaker with no trip condition never opens, one whose callers set no
// mesh timeout never sees a hang, one whose minRequests exceeds what a sidecar sends in its window never
// opens on its failure ratio, and limits above what a hang can pile up never shed load.
import { ms, waitBound } from '../budget.ts';
import type { Finding, Prediction } from '../findings.ts';
import { callers, type Edge, type HopRoute, type LintModel, type LintService } from '../model.ts';
import { breakerName, breakerShares, count, mostRetried, perSecond, sidecarRps, sidecarsOf, triesWhenFailing } from '../traffic.ts';
import { finding, type Rule } from './rule.ts';

const FAULT_MS = 10_000;

export const breakerCannotTrip: Rule = {
  id: 'breaker-cannot-trip',
  check(model) {
    const found: Finding[] = [];
    for (const service of model.services.values()) {
      const config = service.spec.circuitBreaker;
      if (!config) continue;
      const edges = callers(model, service.name);
      const trips = config.consecutiveFailures !== undefined || config.failureRatio !== undefined;
      if (!trips) found.push(noTripCondition(model, service, edges[0]));
      for (const edge of edges) {
        if (trips) found.push(...hangsUncounted(model, service, edge), ...ratioOutOfReach(model, service, edge));
        const limits = limitsOutOfReach(model, service, edge);
        if (limits) found.push(limits);
      }
    }
    return found;
  },
};

/** Neither consecutiveFailures nor failureRatio: the state machine never leaves closed. */
function noTripCondition(model: LintModel, service: LintService, edge: Edge | undefined): Finding {
  const c = service.spec.circuitBreaker!;
  return finding(model, 'breaker-cannot-trip', {
    severity: 'info',
    service: service.name,
    path: edge ? [edge.from, service.name] : [service.name],
    at: service.where('circuitBreaker'),
    message: `${service.name}'s circuit breaker sets neither consecutiveFailures nor failureRatio: it never opens; only its limits act (maxConnections ${c.maxConnections}, maxPendingRequests ${c.maxPendingRequests}, maxRequests ${c.maxRequests}, maxRetries ${c.maxRetries})`,
    why: 'without a trip condition the breaker stays closed however often the service fails, so callers keep sending it every request (as Envoy\'s circuit breakers, which are limits only); the coolDown and halfOpenRequests settings never matter',
    fix: `add consecutiveFailures (open after that many failed tries in a row) or failureRatio to ${service.name}'s circuitBreaker, or leave it as it is if only the limits are meant`,
    figures: [
      { name: 'circuitBreaker.consecutiveFailures', value: 'none', origin: 'default' },
      { name: 'circuitBreaker.failureRatio', value: 'none', origin: 'default' },
    ],
    observed: false,
    predicts: edge && abortPrediction(edge, 10, `with every try from ${edge.from} to ${service.name} failing (503) for ${ms(FAULT_MS)}, ${edge.from}'s breaker on ${service.name} stays closed: it has no condition to open on`),
  });
}

/**
 * A hung try counts as a failure only when a mesh timer ends it (the route's timeout, perTryTimeout or
 * idleTimeout: a 504 UT). With none, it never ends; when the caller's app gives up first, the caller
 * has left, which counts neither way. Either way the breaker never sees the hang.
 */
function hangsUncounted(model: LintModel, service: LintService, edge: Edge): Finding[] {
  const app = edge.app?.timeoutMs;
  const blind = edge.routes
    .map((route) => ({ route, timer: firstTimer(model, route) }))
    .find((r) => r.timer === undefined || (app !== undefined && app <= r.timer.ms));
  if (!blind) return [];
  const { route, timer } = blind;
  const named = route.implicit ? `the implicit route (no route names ${service.name})` : `route ${route.name}`;
  const delayMs = Math.max(3_000, (app ?? 0) + 1_000);
  const appLeaves = app !== undefined && app < delayMs;
  return [finding(model, 'breaker-cannot-trip', {
    service: edge.from,
    path: [edge.from, service.name],
    route: route.name,
    at: timer === undefined ? route.timeoutAt : edge.app!.at,
    message: timer === undefined
      ? `${edge.from}'s calls to ${service.name} have no mesh timeout (${named}: no timeout, perTryTimeout or idleTimeout), so ${service.name}'s breaker never counts a slow or hung try as a failure`
      : `${edge.from}'s app gives up on ${service.name} after ${ms(app!)}, before the mesh's first timer (${named}'s ${timer.field} of ${ms(timer.ms)}) can fail the try, so ${service.name}'s breaker never counts a slow or hung try as a failure`,
    why: `the breaker judges a try when it ends: a hung ${service.name} never fails a try${app !== undefined ? `, and when ${edge.from}'s app gives up after ${ms(app)} the caller has left, which counts neither way` : ''}; the breaker stays closed through the outage it exists for`,
    fix: timer === undefined
      ? `set a timeout (or retries.perTryTimeout) on ${route.implicit ? `a route for host ${service.name}` : `route ${route.name}`}${app !== undefined ? `, below ${edge.from}'s app timeout of ${ms(app)}` : ''}: an expired try is a failure the breaker counts`
      : `lower ${named}'s ${timer.field} below ${ms(app!)} (or set a perTryTimeout below it), so that the mesh fails a hung try before the app leaves`,
    figures: [
      { name: `${edge.from} → ${service.name} first mesh timer`, value: timer === undefined ? 'none' : `${timer.field} ${ms(timer.ms)}`, origin: route.implicit ? 'default' : 'config' },
      ...(app !== undefined ? [{ name: `${edge.from}'s app timeout`, value: ms(app), origin: 'app' as const }] : []),
    ],
    observed: false,
    predicts: {
      fault: { match: { source: edge.from, destination: service.name }, at: 'inbound', delay: { fixed: ms(delayMs) } },
      durationMs: FAULT_MS,
      entry: edge.from,
      rate: entryRate(model, edge.from, 10),
      steadyState: [],
      expect: [{ breaker: { service: service.name, opensWithin: ms(FAULT_MS) } }],
      outcome: `with ${service.name} ${ms(delayMs)} slow for ${edge.from} for ${ms(FAULT_MS)}, no try fails at the mesh (${appLeaves ? `${edge.from}'s app leaves after ${ms(app!)}` : 'they succeed, late'}): the breaker never opens`,
      signature: { hop: `${edge.from} → ${service.name}`, acted: ['caller-left', 'app', 'none'] },
    },
  })];
}

/** The mesh timer that ends a hung try first: the route's timeout, perTryTimeout or idleTimeout. */
function firstTimer(model: LintModel, route: HopRoute): { field: string; ms: number } | undefined {
  const timers = [
    { field: 'timeout', ms: route.timeoutMs },
    { field: 'retries.perTryTimeout', ms: route.retries?.perTryTimeoutMs },
    { field: 'idleTimeout', ms: model.snapshot.routes.find((r) => r.name === route.name)?.idleTimeoutMs },
  ].filter((t): t is { field: string; ms: number } => t.ms !== undefined);
  return timers.length === 0 ? undefined : timers.reduce((a, b) => (b.ms < a.ms ? b : a));
}

/**
 * failureRatio needs minRequests tries in its window before it judges; with no consecutiveFailures
 * beside it, a breaker that never sees that many never opens, even when every try fails (the most tries:
 * the recorded calls of one of the caller's sidecars, with the retries its route and budget allow).
 */
function ratioOutOfReach(model: LintModel, service: LintService, edge: Edge): Finding[] {
  const c = service.spec.circuitBreaker!;
  const rps = sidecarRps(model, edge);
  if (!c.failureRatio || c.consecutiveFailures !== undefined || rps === undefined) return [];
  const { minRequests, window } = c.failureRatio;
  const windowS = Math.max(1, Math.round(window / 1000));
  const { route, retries } = mostRetried(edge);
  const shares = breakerShares(model, edge);
  const short = shares
    .map((b) => ({ ...b, rps: rps * b.share, tries: triesWhenFailing(rps * b.share, windowS, retries, route?.retries?.budget) }))
    .filter((b) => b.tries < minRequests);
  const sidecars = sidecarsOf(model, edge.from);
  return short.map((b) => {
    const name = breakerName(service.name, b.subset);
    const perTrySecond = b.tries / windowS;
    return finding(model, 'breaker-cannot-trip', {
      service: service.name,
      path: [edge.from, service.name],
      route: route?.name,
      at: service.where('circuitBreaker', 'failureRatio', 'minRequests'),
      message: `${edge.from}'s breaker on ${name} sees at most ${count(b.tries)} tries in its ${windowS}s window (calls at ${perSecond(b.rps)} from ${sidecars > 1 ? `each of ${edge.from}'s ${sidecars} sidecars` : 'its sidecar'}${retries > 0 ? `, with up to ${retries} retries each as the retry budget allows` : ''}), below failureRatio.minRequests ${minRequests}: it never opens, even when every call fails`,
      why: `the failure ratio is judged only once ${minRequests} tries are in the window, and with no consecutiveFailures nothing else opens it: at this traffic ${edge.from} keeps sending every request to a failing ${name}`,
      fix: `lower failureRatio.minRequests to ${Math.max(1, Math.floor(b.tries))} or less, lengthen failureRatio.window to ${Math.ceil(minRequests / perTrySecond)}s or more, or add consecutiveFailures`,
      figures: [
        { name: 'failureRatio.minRequests', value: String(minRequests), origin: 'config' },
        { name: 'failureRatio.window', value: ms(window), origin: 'config' },
        { name: `${edge.from} → ${name} calls per sidecar`, value: perSecond(b.rps), origin: 'recording' },
        { name: 'tries in the window when every try fails', value: count(b.tries), origin: 'derived' },
      ],
      predicts: short.length === shares.length
        ? abortPrediction(edge, entryRate(model, edge.from, edge.observed!.rps), `with every try from ${edge.from} to ${service.name} failing (503) for ${ms(FAULT_MS)} at the recorded rate, ${edge.from}'s breaker on ${name} counts at most ${count(b.tries)} tries in its window, under minRequests ${minRequests}: it never opens`)
        : undefined,
    });
  });
}

/**
 * The limits shed load (503 UO) once requests outstanding reach maxRequests, or maxConnections plus a
 * full queue. A try holds its slot until it ends, and tries bounded by a wait W at a rate r keep at most
 * r × W outstanding even when the callee hangs: limits above that never act at the recorded traffic.
 */
function limitsOutOfReach(model: LintModel, service: LintService, edge: Edge): Finding | undefined {
  const c = service.spec.circuitBreaker!;
  const rps = sidecarRps(model, edge);
  const bound = waitBound(edge);
  const largest = breakerShares(model, edge).reduce<{ subset: string; share: number } | undefined>((a, b) => (a && a.share >= b.share ? a : b), undefined);
  if (rps === undefined || !bound || !largest) return undefined;
  const outstanding = rps * largest.share * (bound.ms / 1000);
  const byRequests = c.maxRequests <= c.maxConnections + c.maxPendingRequests;
  const shedAt = byRequests ? c.maxRequests : c.maxConnections + c.maxPendingRequests;
  if (outstanding >= shedAt) return undefined;
  const name = breakerName(service.name, largest.subset);
  const observed = edge.observed!.maxInFlight;
  const { retries } = mostRetried(edge);
  return finding(model, 'breaker-cannot-trip', {
    severity: 'info',
    service: service.name,
    path: [edge.from, service.name],
    at: service.where('circuitBreaker', byRequests ? 'maxRequests' : 'maxConnections'),
    message: `${edge.from}'s breaker on ${name} never sheds load at the recorded traffic: even if ${service.name} hangs, at most ${count(outstanding)} tries are outstanding (${perSecond(rps * largest.share)} × ${ms(bound.ms)} wait) per sidecar, under its limit of ${shedAt} (${byRequests ? `maxRequests ${c.maxRequests}` : `maxConnections ${c.maxConnections} + maxPendingRequests ${c.maxPendingRequests}`}); ${observed} were seen in flight at most`,
    why: `a try holds its slot until it ends and ${edge.from}'s ${bound.by === 'app' ? 'app' : 'route'} gives up after ${ms(bound.ms)}, so the timeouts, not the limits, bound what ${service.name} is sent; the limits protect ${service.name} only from a burst far above what was recorded (that may be all they are meant for)`,
    fix: `if ${service.name} cannot serve ${shedAt} requests at once, set ${byRequests ? 'maxRequests' : 'maxConnections'} to what it can (the recording saw ${observed} in flight${retries > 0 ? `, up to ${observed * (1 + retries)} with every call retried` : ''}); else nothing to do`,
    figures: [
      { name: byRequests ? 'circuitBreaker.maxRequests' : 'circuitBreaker.maxConnections + maxPendingRequests', value: String(shedAt), origin: 'config' },
      { name: `${edge.from} → ${name} calls per sidecar`, value: perSecond(rps * largest.share), origin: 'recording' },
      { name: `${edge.from} → ${service.name} wait`, value: ms(bound.ms), origin: bound.by === 'app' ? 'app' : 'config' },
      { name: 'outstanding if it hangs', value: count(outstanding), origin: 'derived' },
      { name: `${edge.from} → ${service.name} max in flight`, value: String(observed), origin: 'recording' },
    ],
  });
}

/** Every try from the caller to the service fails with a 503, at the attempt: the breaker sees each one. */
function abortPrediction(edge: Edge, rate: number, outcome: string): Prediction {
  return {
    fault: { match: { source: edge.from, destination: edge.to }, at: 'attempt', abort: { status: 503 } },
    durationMs: FAULT_MS,
    entry: edge.from,
    rate,
    steadyState: [],
    expect: [{ breaker: { service: edge.to, opensWithin: ms(FAULT_MS) } }],
    outcome,
    signature: { hop: `${edge.from} → ${edge.to}`, acted: ['fault', 'retry-limit', 'retry-budget'] },
  };
}

/** The load to offer at the entry: its recorded rate (what the finding rests on), else `fallback`. */
function entryRate(model: LintModel, entry: string, fallback: number): number {
  const recorded = model.services.get(entry)?.observed?.rps;
  const rate = recorded !== undefined && recorded > 0 ? recorded : fallback;
  return Math.max(0.1, +rate.toFixed(2));
}
