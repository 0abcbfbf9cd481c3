// ejection-cannot-act: outlier detection that cannot do its job. As outlier.ts has it: each caller's
// sidecar counts every try's outcome at the endpoint it went to (below the retry loop, so a retry onto
// another endpoint does not hide the failed try), ejects at consecutive5xx (or consecutiveGatewayErrors)
// in a row, and caps ejection at maxEjectionPercent, except that the first ejection is always allowed.
// So the only endpoint of a service gets ejected (then, with healthyPanicThreshold 0, every call is
// 503 UH until it returns; with a panic threshold, the ejection changes nothing), a percent below one
// endpoint allows just that first ejection, and a threshold above the tries one endpoint gets from a
// sidecar in an interval ejects late. The interval detectors (failurePercentage, latency) judge only
// when minimumHosts endpoints had requestVolume tries in the interval, counted by each caller's
// sidecar: with fewer endpoints than minimumHosts they never act (Envoy's default of 5 hosts is the
// usual reason its failure percentage "never fires"), and below the volume at the recorded traffic neither.
import { ms } from '../budget.ts';
import type { Finding } from '../findings.ts';
import { callers, type Edge, type LintModel, type LintService } from '../model.ts';
import { count, mostRetried, perSecond, sidecarRps, sidecarsOf, triesWhenFailing } from '../traffic.ts';
import { finding, type Rule } from './rule.ts';

const FAULT_MS = 10_000;

export const ejectionCannotAct: Rule = {
  id: 'ejection-cannot-act',
  check(model) {
    const found: Finding[] = [];
    for (const service of model.services.values()) {
      if (!service.spec.outlierDetection) continue;
      const n = service.spec.endpoints.length;
      const edges = callers(model, service.name);
      found.push(...intervalDetectorsIdle(model, service, edges));
      if (n === 1) found.push(onlyEndpoint(model, service, edges[0]));
      if (n >= 2) {
        const capped = onlyFirstEjection(model, service);
        if (capped) found.push(capped);
        for (const edge of edges) {
          const late = ejectsLate(model, service, edge);
          if (late) found.push(late);
        }
      }
    }
    return found;
  },
};

/** What ejects on a 503: consecutive5xx, or consecutiveGatewayErrors when it is lower. */
function threshold(service: LintService): { value: number; field: 'consecutive5xx' | 'consecutiveGatewayErrors' } {
  const o = service.spec.outlierDetection!;
  return o.consecutiveGatewayErrors !== undefined && o.consecutiveGatewayErrors < o.consecutive5xx
    ? { value: o.consecutiveGatewayErrors, field: 'consecutiveGatewayErrors' }
    : { value: o.consecutive5xx, field: 'consecutive5xx' };
}

/** One endpoint: the first ejection is always allowed, so it goes, and nothing is left to send to. */
function onlyEndpoint(model: LintModel, service: LintService, edge: Edge | undefined): Finding {
  const o = service.spec.outlierDetection!;
  const panic = service.spec.panicThreshold;
  const k = threshold(service);
  const outage = `${ms(o.baseEjectionTime)} to ${ms(o.baseEjectionTime + o.interval)}`;
  const figures = [
    { name: `${service.name} endpoints`, value: '1', origin: 'config' as const },
    { name: `outlierDetection.${k.field}`, value: String(k.value), origin: 'config' as const },
    { name: 'outlierDetection.baseEjectionTime', value: ms(o.baseEjectionTime), origin: 'config' as const },
    { name: 'healthyPanicThreshold', value: `${panic}%`, origin: 'config' as const },
  ];
  if (panic > 0) {
    return finding(model, 'ejection-cannot-act', {
      service: service.name,
      path: edge ? [edge.from, service.name] : [service.name],
      at: service.where('outlierDetection'),
      message: `${service.name} has one endpoint and healthyPanicThreshold ${panic}%: outlier detection ejects it after ${k.value} failures in a row, and panic mode sends it every call anyway`,
      why: 'with no other endpoint, an ejection leaves 0 % available, below the panic threshold, so the balancer uses all endpoints, ejected or not: the ejection changes nothing',
      fix: `give ${service.name} a second endpoint, or drop its outlierDetection (a circuitBreaker judges the service as a whole)`,
      figures,
      observed: false,
    });
  }
  return finding(model, 'ejection-cannot-act', {
    service: service.name,
    path: edge ? [edge.from, service.name] : [service.name],
    at: service.where('outlierDetection'),
    message: `${service.name} has one endpoint: ${k.value} failures in a row eject it (the first ejection is always allowed, whatever maxEjectionPercent ${o.maxEjectionPercent} says), and then every call to ${service.name} is 503 UH for ${outage}`,
    why: `with healthyPanicThreshold 0 no endpoint is left to balance over: a few failures (a deploy, a blip) become an outage of ${ms(o.baseEjectionTime)} or more, longer with each ejection in a row; 503 UH is never retried, and the breaker does not count it`,
    fix: `give ${service.name} a second endpoint, set healthyPanicThreshold above 0 (the ejection then changes nothing), or drop its outlierDetection`,
    figures,
    observed: false,
    predicts: edge && {
      fault: { match: { source: edge.from, destination: service.name }, at: 'inbound', abort: { status: 503 }, count: { first: k.value } },
      durationMs: FAULT_MS,
      entry: edge.from,
      rate: 20,
      steadyState: [{ availability: { service: service.name, min: Math.max(50, 100 - k.value) } }],
      expect: [],
      outcome: `${k.value} aborted calls in a row (at most ${k.value} of the ~${(20 * FAULT_MS) / 1000} requests) eject ${service.name}'s only endpoint: every later call is 503 UH for ${outage}, far more than the aborts alone would fail`,
      signature: { hop: `${edge.from} → ${service.name}`, acted: ['no-healthy-upstream', 'outlier'] },
    },
  });
}

/** A percent of the endpoints below one endpoint: only the always-allowed first ejection happens. */
function onlyFirstEjection(model: LintModel, service: LintService): Finding | undefined {
  const o = service.spec.outlierDetection!;
  const n = service.spec.endpoints.length;
  const allowed = (n * o.maxEjectionPercent) / 100;
  if (allowed >= 1) return undefined;
  return finding(model, 'ejection-cannot-act', {
    severity: 'info',
    service: service.name,
    path: [service.name],
    at: service.where('outlierDetection', 'maxEjectionPercent'),
    message: `maxEjectionPercent ${o.maxEjectionPercent} of ${service.name}'s ${n} endpoints is ${+allowed.toFixed(2)} endpoints: only the first ejection, always allowed, can happen; at most 1 of ${n} is ejected at once`,
    why: `while one endpoint is ejected a second failing one stays in the pool and keeps failing its share of calls; the percent reads as a cap but here it is "one at a time"`,
    fix: `raise maxEjectionPercent to ${Math.min(100, Math.ceil(200 / n))} to let 2 of ${n} be ejected at once, or keep it if one at a time is what is meant`,
    figures: [
      { name: `${service.name} endpoints`, value: String(n), origin: 'config' },
      { name: 'outlierDetection.maxEjectionPercent', value: `${o.maxEjectionPercent}%`, origin: 'config' },
    ],
    observed: false,
  });
}

/**
 * Consecutive failures never expire, so a dead endpoint is ejected at last; but one caller's sidecar
 * reaches the threshold only after threshold ÷ (its tries per endpoint per second), and when that is
 * more than an interval even while every try fails, the endpoint takes calls long after it died.
 */
function ejectsLate(model: LintModel, service: LintService, edge: Edge): Finding | undefined {
  const o = service.spec.outlierDetection!;
  const rps = sidecarRps(model, edge);
  if (rps === undefined || rps <= 0) return undefined;
  const n = service.spec.endpoints.length;
  const k = threshold(service);
  const intervalS = Math.max(1, o.interval / 1000);
  const { route, retries } = mostRetried(edge);
  const perEndpoint = triesWhenFailing(rps, intervalS, retries, route?.retries?.budget) / n;
  if (perEndpoint >= k.value) return undefined;
  const ejectAfterMs = (k.value / perEndpoint) * o.interval;
  const sidecars = sidecarsOf(model, edge.from);
  return finding(model, 'ejection-cannot-act', {
    service: service.name,
    path: [edge.from, service.name],
    route: route?.name,
    at: service.where('outlierDetection', k.field),
    message: `an endpoint of ${service.name} gets at most ${count(perEndpoint)} tries per ${ms(o.interval)} interval from ${sidecars > 1 ? `each of ${edge.from}'s ${sidecars} sidecars` : `${edge.from}'s sidecar`} (${perSecond(rps)} calls over ${n} endpoints${retries > 0 ? `, retries included` : ''}), below ${k.field} ${k.value}: a dead endpoint is ejected only after ${ms(ejectAfterMs)}`,
    why: `each sidecar counts its own tries; at the recorded traffic it takes ${ms(ejectAfterMs)} of failures in a row before ${edge.from}'s sidecar ejects the endpoint, and until then it keeps getting its share of calls (retries onto another endpoint hide some from ${edge.from}, not from the detector)`,
    fix: `lower ${k.field} to ${Math.max(1, Math.floor(perEndpoint))} or less (or set consecutiveGatewayErrors that low), or rely on health checks to take a dead endpoint out`,
    figures: [
      { name: `outlierDetection.${k.field}`, value: String(k.value), origin: 'config' },
      { name: 'outlierDetection.interval', value: ms(o.interval), origin: 'config' },
      { name: `${edge.from} → ${service.name} calls per sidecar`, value: perSecond(rps), origin: 'recording' },
      { name: `${service.name} endpoints`, value: String(n), origin: 'config' },
      { name: 'tries per endpoint per interval when all fail', value: count(perEndpoint), origin: 'derived' },
    ],
    predicts: {
      fault: { match: { source: edge.from, destination: service.name }, at: 'inbound', abort: { status: 503 } },
      durationMs: Math.max(FAULT_MS, o.interval),
      entry: edge.from,
      rate: Math.max(0.1, +(model.services.get(edge.from)?.observed?.rps || edge.observed!.rps).toFixed(2)),
      steadyState: [],
      expect: [{ outlierEjects: { service: service.name, within: ms(o.interval) } }],
      outcome: `the fault fails ${edge.from}'s calls on all ${n} of ${service.name}'s endpoints (503 at their inbound), so a retry finds no good one; at the recorded rate each gets ${count(perEndpoint)} tries per interval, and the first ejection comes after ${ms(ejectAfterMs)}, not within ${ms(o.interval)}`,
      signature: { hop: `${edge.from} → ${service.name}`, acted: ['fault', 'retry-limit', 'retry-budget'] },
    },
  });
}

const DETECTORS = ['failurePercentage', 'latency'] as const;

/**
 * An interval detector that cannot judge: fewer endpoints than its minimumHosts (it never acts), or,
 * recorded, fewer tries per endpoint in an interval from each caller's sidecar than its requestVolume.
 */
function intervalDetectorsIdle(model: LintModel, service: LintService, edges: readonly Edge[]): Finding[] {
  const o = service.spec.outlierDetection!;
  const n = service.spec.endpoints.length;
  const found: Finding[] = [];
  for (const name of DETECTORS) {
    const d = o[name];
    if (!d) continue;
    if (n < d.minimumHosts) {
      found.push(finding(model, 'ejection-cannot-act', {
        service: service.name,
        path: [service.name],
        at: service.where('outlierDetection', name, 'minimumHosts'),
        message: `outlierDetection.${name} judges ${service.name} only when ${d.minimumHosts} endpoints had ${d.requestVolume} tries in an interval, and ${service.name} has ${n}: it never ejects`,
        why: `the detector compares endpoints only when enough of them carry traffic; with ${n} endpoint${n === 1 ? '' : 's'} that never happens, so a failing or slow instance stays in the pool as far as ${name} goes`,
        fix: n >= (name === 'latency' ? 2 : 1)
          ? `set outlierDetection.${name}.minimumHosts to ${n} or less`
          : `give ${service.name} a second endpoint (latency compares an endpoint with its siblings)`,
        figures: [
          { name: `${service.name} endpoints`, value: String(n), origin: 'config' },
          { name: `outlierDetection.${name}.minimumHosts`, value: String(d.minimumHosts), origin: 'config' },
        ],
        observed: false,
      }));
      continue;
    }
    for (const edge of edges) {
      const rps = sidecarRps(model, edge);
      if (rps === undefined || rps <= 0) continue;
      const perEndpoint = (rps * o.interval) / 1000 / n;
      if (perEndpoint >= d.requestVolume) continue;
      found.push(finding(model, 'ejection-cannot-act', {
        service: service.name,
        path: [edge.from, service.name],
        at: service.where('outlierDetection', name, 'requestVolume'),
        message: `an endpoint of ${service.name} gets about ${count(perEndpoint)} tries per ${ms(o.interval)} interval from ${edge.from}'s sidecar, below outlierDetection.${name}.requestVolume ${d.requestVolume}: ${name} never judges it at the recorded traffic`,
        why: `each sidecar counts its own tries per interval; below the volume an endpoint is neither judged nor counted as a sibling, so ${name} does not act however badly it does`,
        fix: `lower outlierDetection.${name}.requestVolume to ${Math.max(1, Math.floor(perEndpoint))}, or lengthen interval to ${ms(Math.ceil((d.requestVolume / perEndpoint) * o.interval / 1000) * 1000)}`,
        figures: [
          { name: `outlierDetection.${name}.requestVolume`, value: String(d.requestVolume), origin: 'config' },
          { name: 'outlierDetection.interval', value: ms(o.interval), origin: 'config' },
          { name: `${edge.from} → ${service.name} calls per sidecar`, value: perSecond(rps), origin: 'recording' },
          { name: `${service.name} endpoints`, value: String(n), origin: 'config' },
          { name: 'tries per endpoint per interval', value: count(perEndpoint), origin: 'derived' },
        ],
      }));
    }
  }
  return found;
}
