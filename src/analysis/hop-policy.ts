// What the policies of one hop (a caller's sidecar calling a service) did with a failed call, read from
// its request.done event and the route it took as the recorded config has it: which policy acted
// (the route timeout, a per-try timeout, the retry limit or budget, the breaker, outlier detection...)
// and whether the hop's retry could act on the failure, and if not, why not.
import type { RouteSpec } from '../config/specs.ts';
import { upstreamConnectFailure, upstreamReset } from '../errors.ts';
import { callSucceeded, succeeded } from '../measures.ts';
import { mayRetry, retriable, type Outcome } from '../proxy/retry.ts';
import type { Event } from './common.ts';
import type { HopActed, RetryVerdict } from './types.ts';

/** Flags the mesh sets when it, not the app, made a call fail: the failures attribution walks to. */
export const MESH_FAILURE_FLAGS = new Set(['UT', 'URX', 'UBX', 'RBL', 'UO', 'UH', 'UF', 'UC', 'FI', 'NR', 'XX']);

/** The hop's route as the run's config had it: undefined when the run has no recorded config (or the route is gone). */
export type RouteOf = (name: string | null) => RouteSpec | undefined | null;

/** Which policy acted on a failed hop, and in words. `ejected`: outlier detection had an endpoint of the destination out. */
export function actedAt(hop: Event, route: RouteSpec | undefined | null, ejected: boolean): { acted: HopActed; how: string } {
  const flags = new Set(hop.flags as string[]);
  const status = hop.status as number;
  const took = seconds(hop.durationMs as number);
  const tries = (hop.attempts as number) || 1;
  const to = String(hop.service ?? 'the app');
  if (callSucceeded(hop)) return { acted: 'none', how: `${to} answered ${status} after ${took}` };
  // No answer written: the caller left first, whatever the mesh was doing (a try, a backoff) then.
  if (status === 0) {
    const perTryMs = flags.has('UT') ? route?.retries?.perTryTimeoutMs : undefined;
    const before = perTryMs !== undefined && tries > 1 ? ` (the per-try timeout ${seconds(perTryMs)} had cut the tries before)` : '';
    return { acted: 'caller-left', how: `the caller left after ${took}, during try ${tries}${before}: its own timeout or cancellation` };
  }
  if (flags.has('UT')) {
    const routeMs = route?.timeoutMs;
    const perTryMs = route?.retries?.perTryTimeoutMs;
    // Both timeouts flag UT: the route's is the one that fired when the call lasted (about) its length.
    if (routeMs !== undefined && (hop.durationMs as number) >= routeMs * 0.95) return { acted: 'route-timeout', how: `route timeout ${seconds(routeMs)} of route ${String(hop.route)} cut the request after ${took}` };
    if (perTryMs !== undefined) return { acted: flags.has('URX') ? 'retry-limit' : 'per-try-timeout', how: `per-try timeout ${seconds(perTryMs)} cut ${tries === 1 ? 'the try' : `each of ${tries} tries`}${flags.has('URX') ? ', and the retries were used up' : ''}` };
    return { acted: 'timeout', how: `a timeout cut the request after ${took} (the route's timeouts are not in the recording)` };
  }
  if (flags.has('UBX')) return { acted: 'retry-budget', how: `a retry was due but the retry budget of route ${String(hop.route)} was spent` };
  if (flags.has('UO')) return { acted: 'breaker', how: `the circuit breaker on ${to} refused the call` };
  if (flags.has('URX')) return { acted: 'retry-limit', how: `${tries} tries all failed: the retries were used up` };
  if (flags.has('RBL')) return { acted: 'retry-limit', how: 'a retry was due but the body was larger than the replay buffer' };
  if (flags.has('UH')) return ejected ? { acted: 'outlier', how: `no healthy endpoint of ${to}: outlier detection had ejected one` } : { acted: 'no-healthy-upstream', how: `no healthy endpoint of ${to}` };
  if (flags.has('FI')) return { acted: 'fault', how: `a fault made the call fail (${status})` };
  if (flags.has('UF')) return { acted: 'connect-failure', how: `could not connect to ${to}` };
  if (flags.has('UC')) return { acted: 'reset', how: `${to} closed the connection` };
  if (flags.has('DC')) return { acted: 'caller-left', how: `the caller left after ${took}, before the answer was sent` };
  return { acted: 'app', how: `${to} answered ${status}` };
}

/** Whether the hop's retry could act on its failure, and why not when it could not. */
export function retryAt(hop: Event, route: RouteSpec | undefined | null, acted: HopActed): RetryVerdict {
  const tries = (hop.attempts as number) || 1;
  const took = seconds(hop.durationMs as number);
  if (route === undefined) return { verdict: 'unknown', why: 'the run has no recorded config (mesh.yaml): its route policies are unknown' };
  if (route === null) return { verdict: 'unknown', why: `route ${String(hop.route)} is not in the recorded config` };
  const policy = route.retries;
  if (!policy) return { verdict: 'none-configured', why: `none configured on route ${route.name}` };
  if (acted === 'retry-budget') return { verdict: 'budget-spent', why: `the retry budget was spent after ${tries} ${tries === 1 ? 'try' : 'tries'}` };
  if (acted === 'retry-limit') return { verdict: 'limit-reached', why: `${tries} tries of ${policy.attempts + 1} allowed, all failed` };
  if (acted === 'breaker' && tries > 1) return { verdict: 'breaker-refused', why: `the breaker's retry limit refused try ${tries + 1}` };
  if (acted === 'caller-left') {
    const perTryMs = policy.perTryTimeoutMs;
    const outlasted = perTryMs !== undefined && tries > 1 ? `: ${policy.attempts + 1} tries of up to ${seconds(perTryMs)} outlast the ${took} the caller waited` : '';
    return { verdict: 'not-retriable', why: `the caller left during try ${tries}${outlasted}` };
  }
  // The mesh's own refusals are errors the retry layer does not retry (only connect failures, resets and per-try timeouts).
  if (acted === 'breaker' || acted === 'no-healthy-upstream' || acted === 'outlier') return { verdict: 'not-retriable', why: `a refusal by the mesh (${describeFailure(hop)}) is not retried` };
  if (!mayRetry(policy, String(hop.method))) return { verdict: 'method-not-idempotent', why: `${String(hop.method)} is not retried (retryNonIdempotent is off)` };
  if (acted === 'route-timeout' || acted === 'timeout') {
    if (tries > 1) return { verdict: 'retried', why: `${tries} tries before the route timeout cut the request` };
    const routeMs = route.timeoutMs ?? Infinity;
    const onTimeout = policy.retryOn.has('5xx') || policy.retryOn.has('gateway-error');
    if (policy.perTryTimeoutMs === undefined || policy.perTryTimeoutMs >= routeMs) {
      const under = Number.isFinite(routeMs) ? ` under ${seconds(routeMs)}` : '';
      return { verdict: 'per-try-timeout-would-allow', why: `no per-try timeout shorter than the route's: the first try used all of it; a per-try timeout${under}${onTimeout ? '' : ' (with retryOn 5xx or gateway-error)'} would have allowed a retry` };
    }
    if (!onTimeout) return { verdict: 'not-retriable', why: `a per-try timeout is retried only with retryOn 5xx or gateway-error (retryOn: ${[...policy.retryOn].join(', ')})` };
    return { verdict: 'no-time-left', why: `the per-try timeout ${seconds(policy.perTryTimeoutMs)} left no time for another try` };
  }
  if (tries > 1) return { verdict: 'retried', why: `${tries} tries, the last one failed` };
  const outcome = outcomeOf(hop);
  if (outcome === undefined || retriable(policy, outcome) === undefined) return { verdict: 'not-retriable', why: `${describeFailure(hop)} is not in retryOn (${[...policy.retryOn].join(', ')})` };
  return { verdict: 'not-retried', why: `retriable (${describeFailure(hop)}) but not retried` };
}

/** The hop's failure as its retry layer saw it, so the layer's own rule (`retriable`) judges it. */
function outcomeOf(hop: Event): Outcome | undefined {
  const flags = hop.flags as string[];
  const at = String(hop.endpoint ?? hop.service);
  if (flags.includes('UF')) return { error: upstreamConnectFailure(at, 'as recorded') };
  if (flags.includes('UC')) return { error: upstreamReset(at, 'as recorded') };
  const status = hop.status as number;
  return status > 0 ? { response: { status, headers: {}, body: null } } : undefined;
}

function describeFailure(hop: Event): string {
  const flags = hop.flags as string[];
  return `${hop.status as number}${flags.length ? ` ${flags.join(',')}` : ''}`;
}

/** 3 s, 1.5 s, 250 ms: as a route's settings are written. */
export function seconds(ms: number): string {
  return ms >= 1_000 ? `${Number((ms / 1000).toFixed(2))} s` : `${Math.round(ms)} ms`;
}
