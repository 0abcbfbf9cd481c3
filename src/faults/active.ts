// A fault in force on a sidecar: its compiled match, its action, its lease and its decision counter.
// The decision for the n-th matching request is drawn from (seed, id, n) alone (random.ts), after the
// count rule (first N, every K-th) and before the percentage.
import { pathMatcher, stringMatcher } from '../config/matchers.ts';
import { Cancellation } from '../http/cancellation.ts';
import type { Point } from './actions/action.ts';
import { actionName, actionOf, type FaultAction } from './actions/index.ts';
import { selectorOf, type SelectableEndpoint } from './endpoints.ts';
import { decisionRandom } from './random.ts';
import type { FaultConfig } from './schema.ts';

export type { Point };
export type Origin = 'config' | 'runtime';
/**
 * Where in the stack a fault is looked up: its point, except that an attempt fault on chosen
 * endpoints acts after balancing (`endpoint`), once the attempt's endpoint is known.
 */
export type Slot = Point | 'endpoint';

/** What a fault matches on, read from a request at an injection point. */
export interface FaultInput {
  readonly source: string;
  readonly destination: string;
  readonly route: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The instance the call goes to (after balancing) or arrived at (inbound); undefined before balancing. */
  readonly endpoint?: SelectableEndpoint | undefined;
  /** All the endpoints of the destination, as the snapshot lists them: what a selector chooses among. */
  readonly peers?: readonly SelectableEndpoint[] | undefined;
}

/** Matches and decisions so far; kept by the table across config reloads for an unchanged fault. */
export interface FaultCounter {
  matched: number;
  applied: number;
}

export interface Decision {
  readonly ordinal: number;
  readonly random: () => number;
}

export class ActiveFault {
  readonly id: string;
  readonly spec: FaultConfig;
  readonly origin: Origin;
  readonly installedAt: number;
  /** Epoch milliseconds when the lease ends; undefined for a config fault without one. Renewals move it. */
  expiresAt: number | undefined;
  readonly action: FaultAction | undefined;
  readonly actionName: string;
  /** The points it acts at: its `at`, or for a partition every connection (attempts and inbound). */
  readonly points: ReadonlySet<Point>;
  /** Where the fault layers look it up: its points, an attempt fault on chosen endpoints after balancing. */
  readonly slots: ReadonlySet<Slot>;
  readonly matches: (input: FaultInput) => boolean;
  /** The destinations it can match, when it names them (a partition: both sides); undefined for any. */
  readonly destinations: readonly string[] | undefined;
  /** Fires when the fault is removed: requests it holds (delays, hangs, blackholes) go on at once. */
  readonly removed = new Cancellation();
  readonly counter: FaultCounter;

  constructor(spec: FaultConfig, origin: Origin, expiresAt: number | undefined, counter: FaultCounter = { matched: 0, applied: 0 }) {
    this.id = spec.id;
    this.spec = spec;
    this.origin = origin;
    this.installedAt = Date.now();
    this.expiresAt = expiresAt;
    this.counter = counter;
    this.action = actionOf(spec);
    this.actionName = actionName(spec);
    this.points = new Set<Point>(spec.partition ? ['attempt', 'inbound'] : spec.tcp ? [] : [spec.at]);
    this.slots = spec.match.endpoints && spec.at === 'attempt' ? new Set<Slot>(['endpoint']) : this.points;
    this.matches = spec.partition ? partitionMatcher(spec.partition) : compileMatch(spec.match, spec.seed);
    const partition = spec.partition;
    this.destinations = partition
      ? [...new Set([...partition.to, ...(partition.direction === 'both' ? partition.from : [])])]
      : spec.match.destination === undefined ? undefined : [spec.match.destination].flat();
  }

  get expired(): boolean {
    return this.expiresAt !== undefined && Date.now() >= this.expiresAt;
  }

  /** Counts a matching request and decides whether it is faulted. */
  decide(): Decision | undefined {
    if (this.removed.cancelled || this.expired) return undefined;
    const ordinal = ++this.counter.matched;
    const { count, percent, seed } = this.spec;
    if (count?.first !== undefined && ordinal > count.first) return undefined;
    if (count?.every !== undefined && ordinal % count.every !== 0) return undefined;
    const random = decisionRandom(seed, this.id, ordinal);
    if (random() * 100 >= percent) return undefined;
    this.counter.applied++;
    return { ordinal, random };
  }

  /** What GET /faults shows. */
  view(now = Date.now()): Record<string, unknown> {
    return {
      id: this.id,
      origin: this.origin,
      action: this.actionName,
      installedAt: new Date(this.installedAt).toISOString(),
      expiresAt: this.expiresAt === undefined ? null : new Date(this.expiresAt).toISOString(),
      remainingMs: this.expiresAt === undefined ? null : Math.max(0, this.expiresAt - now),
      matched: this.counter.matched,
      applied: this.counter.applied,
      spec: this.spec,
    };
  }
}

function compileMatch(match: FaultConfig['match'], seed: number): (input: FaultInput) => boolean {
  const checks: ((input: FaultInput) => boolean)[] = [];
  const oneOf = (names: string | string[] | undefined) => (names === undefined ? undefined : new Set([names].flat()));
  const sources = oneOf(match.source);
  const destinations = oneOf(match.destination);
  const routes = oneOf(match.route);
  const methods = oneOf(match.method);
  // Cheapest and most selective first: most requests fail on the destination.
  if (destinations) checks.push((i) => destinations.has(i.destination));
  if (sources) checks.push((i) => sources.has(i.source));
  if (routes) checks.push((i) => i.route !== undefined && routes.has(i.route));
  if (methods) checks.push((i) => methods.has(i.method));
  const path = pathMatcher(match);
  if (path) checks.push((i) => path(i.path));
  for (const [name, rule] of Object.entries(match.headers ?? {})) {
    const key = name.toLowerCase();
    const test = stringMatcher(rule);
    checks.push((i) => {
      const value = i.headers[key];
      return test(Array.isArray(value) ? value.join(',') : value);
    });
  }
  if (match.endpoints) {
    const chosen = selectorOf(match.endpoints, seed);
    checks.push((i) => i.endpoint !== undefined && i.peers !== undefined && chosen(i.peers).has(i.endpoint.address));
  }
  return (input) => {
    for (const check of checks) if (!check(input)) return false;
    return true;
  };
}

/** A partition cuts calls from `from` to `to`, and back when both ways. */
function partitionMatcher(partition: NonNullable<FaultConfig['partition']>): (input: FaultInput) => boolean {
  const from = new Set(partition.from);
  const to = new Set(partition.to);
  const both = partition.direction === 'both';
  return (i) => (from.has(i.source) && to.has(i.destination)) || (both && to.has(i.source) && from.has(i.destination));
}
