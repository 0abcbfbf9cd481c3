// Time and tries along a hop, as the proxy's own rules make them: how long a caller may wait for a
// call (the app's timeout, the route's, or tries × per-try + backoff), how many tries a call can cost
// below, and how long a service may legitimately take given its own calls.
import type { RetryPolicySpec } from '../config/snapshot.ts';
import { callees, type Edge, type HopRoute, type LintModel } from './model.ts';

/** The longest backoff the tries of a policy can wait, in all (full jitter: retry n waits < min(max, base × 2^(n-1))). */
export function maxBackoffMs(retries: RetryPolicySpec): number {
  let sum = 0;
  for (let n = 1; n <= retries.attempts; n++) sum += Math.min(retries.backoff.maxMs, retries.backoff.baseMs * 2 ** (n - 1));
  return sum;
}

/** Tries a call on the route can cost: the first and its retries. */
export function triesOf(route: HopRoute): number {
  return 1 + (route.retries?.attempts ?? 0);
}

/**
 * How long the mesh lets a call on this route run: its timeout; with none, tries × per-try timeout +
 * the longest backoff; undefined when nothing bounds it.
 */
export function routeBoundMs(route: HopRoute): number | undefined {
  if (route.timeoutMs !== undefined) return route.timeoutMs;
  const r = route.retries;
  if (r?.perTryTimeoutMs !== undefined) return triesOf(route) * r.perTryTimeoutMs + maxBackoffMs(r);
  return undefined;
}

/** How long the mesh lets the retries of a route run, were no route timeout to cut them: tries × per-try + backoff. */
export function triesSpanMs(route: HopRoute): number | undefined {
  const r = route.retries;
  if (r?.perTryTimeoutMs === undefined) return undefined;
  return triesOf(route) * r.perTryTimeoutMs + maxBackoffMs(r);
}

/** What bounds a caller's wait on an edge, in ms, and what sets it; undefined when nothing does. */
export interface Bound {
  readonly ms: number;
  readonly by: 'app' | 'route';
  /** The route whose bound it is (the longest of the edge's routes), when by is route. */
  readonly route: HopRoute | undefined;
}

/**
 * The longest a caller waits for one call on the edge: the app's timeout when it is shorter than every
 * route's bound, else the longest route's bound (with one app retry per declared retry: tries × timeout).
 */
export function waitBound(edge: Edge): Bound | undefined {
  const routes = edge.routes.map((route) => ({ route, ms: routeBoundMs(route) }));
  const unbounded = routes.length === 0 || routes.some((r) => r.ms === undefined);
  const longest = unbounded ? undefined : routes.reduce((a, b) => (b.ms! > a.ms! ? b : a));
  const appMs = edge.app?.timeoutMs;
  if (appMs !== undefined && (longest === undefined || appMs <= longest.ms!)) return { ms: appMs * (1 + (edge.app?.retries ?? 0)), by: 'app', route: undefined };
  if (longest === undefined) return undefined;
  return { ms: longest.ms! * (1 + (edge.app?.retries ?? 0)), by: 'route', route: longest.route };
}

/** Tries one call on the edge can cost the callee at worst: the app's tries × the mesh's. */
export function edgeTries(edge: Edge): number {
  const mesh = Math.max(1, ...edge.routes.map(triesOf));
  return (1 + (edge.app?.retries ?? 0)) * mesh;
}

/**
 * How long a service may legitimately take for one request, from its calls: the slowest call's bound
 * when it makes them at once, their sum when one after another. Undefined when it calls nobody known,
 * or when a call has no bound (missing-timeout says so).
 */
export function needMs(model: LintModel, service: string): { ms: number; calls: readonly { edge: Edge; bound: Bound }[] } | undefined {
  const calls = callees(model, service).map((edge) => ({ edge, bound: waitBound(edge) }));
  if (calls.length === 0 || calls.some((c) => c.bound === undefined)) return undefined;
  const bounded = calls as { edge: Edge; bound: Bound }[];
  const order = model.services.get(service)?.callOrder ?? 'parallel';
  const ms = order === 'sequential' ? bounded.reduce((sum, c) => sum + c.bound.ms, 0) : Math.max(...bounded.map((c) => c.bound.ms));
  return { ms, calls: bounded };
}

/** The game day's rate at a service: what the recording saw, within 5–50 per second; 20 without one. */
export function loadRate(model: LintModel, service: string): number {
  return Math.max(5, Math.min(50, Math.round(model.services.get(service)?.observed?.rps ?? 20)));
}

/** A duration for people: 800ms, 1.5s, 2m. */
export function ms(value: number): string {
  if (value < 1000) return `${Math.round(value)}ms`;
  if (value < 60_000) return `${+(value / 1000).toFixed(2)}s`;
  return `${+(value / 60_000).toFixed(2)}m`;
}
