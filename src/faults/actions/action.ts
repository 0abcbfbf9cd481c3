// The contract of a fault action: the runtime that hurts a request (FaultAction), and what its one module
// declares (ActionDefinition) so the fault schema, the sidecar, the runner and the analysis know it from
// its line in the registry (actions/index.ts). docs/extending.md shows how to add one.
import type { z } from 'zod';
import type { Handler, ProxyResponse, RequestContext } from '../../http/types.ts';
import type { Cancellation } from '../../http/cancellation.ts';
import type { FaultMatchConfig } from '../match.ts';

export type Plan = Record<string, string | number | boolean>;

/** Where in the request path a fault acts: once per request, at each try, or at the destination. */
export type Point = 'request' | 'attempt' | 'inbound';

/** What an action sees of the fault it runs for (an ActiveFault). */
export interface InjectedFault {
  readonly id: string;
  /** Fires when the fault is removed: requests it holds (delays, hangs, blackholes) go on at once. */
  readonly removed: Cancellation;
}

export interface Injection {
  readonly fault: InjectedFault;
  readonly point: Point;
  readonly plan: Plan;
}

/**
 * An HTTP action at run time. It first plans an injection (draws what it will do from the decision's
 * random source, so the plan is reproducible and can be reported), then runs the request with the fault
 * in it. Matching, the seeded draw and the lease are the fault layer's: an action never rolls its own dice.
 */
export interface FaultAction {
  readonly name: string;
  plan(random: () => number): Plan;
  run(ctx: RequestContext, next: Handler, injection: Injection): Promise<ProxyResponse>;
}

/** Names a fault refers to, which the mesh config must declare; the path is within the fault. */
export interface Reference {
  readonly path: readonly (string | number)[];
  readonly kind: 'service' | 'tcpListener';
  readonly names: readonly string[];
}

/** A problem across the fault that the action's own schema cannot see; the path is within the fault. */
export interface FaultIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

interface Declaration<N extends string, S extends z.ZodType> {
  /** The fault's field that selects the action; also its name in events, metrics, reports. */
  readonly name: N;
  /** Its settings, with descriptions: the field in FaultSpec and in `faultline schema`. */
  readonly schema: S;
  /** Valid settings as written in a file, durations included: the registry test parses and round-trips them. */
  readonly example: z.input<S>;
  /** Settings that are durations, as dotted paths: the runner turns them back into text for the fault API. */
  readonly durations?: readonly string[];
  /** The services it touches (blast radius, overlap, attribution); by default the fault's match.destination. */
  targets?(config: z.output<S>, match: FaultMatchConfig): string[];
  /** Names in its settings that the config must declare (a partition's services, a tcp listener). */
  references?(config: z.output<S>): Reference[];
  /** Checks across the whole fault (a partition names no services in match). */
  check?(config: z.output<S>, match: FaultMatchConfig): FaultIssue[];
}

/**
 * One fault action. `http`: it acts on requests in the fault layer, `create` building its runtime from
 * the settings once per fault; `l4`: it acts on the connections of a sidecar tcp listener instead.
 */
export type ActionDefinition<N extends string = string, S extends z.ZodType = z.ZodType> = Declaration<N, S> &
  ({ readonly layer: 'http'; create(config: z.output<S>): FaultAction } | { readonly layer: 'l4' });

/** Declares an action, keeping its name and settings types for the schema built from the registry. */
export const defineAction = <const N extends string, S extends z.ZodType>(definition: ActionDefinition<N, S>): ActionDefinition<N, S> => definition;
