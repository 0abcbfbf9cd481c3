// The compiled specs a snapshot is made of — services, endpoints, routes, destinations, sidecars — and
// what a request reads of the snapshot in force. Types only, from the resources' schemas: the request
// path (src/http) depends on these, not on the whole config format and its fault actions.
import type { RouteMatcher } from './matchers.ts';
import type {
  CircuitBreakerConfig,
  HealthCheckConfig,
  LoadBalancerPolicy,
  OutlierDetectionConfig,
  RetryOnCondition,
  ServiceProtocol,
  SidecarConfig,
} from './resources.ts';

export type Labels = Readonly<Record<string, string>>;

export interface EndpointSpec {
  readonly service: string;
  /** The address the config lists: the service instance itself. */
  readonly address: string;
  readonly labels: Labels;
  /** Where a sidecar connects to reach it: the inbound listener of the sidecar fronting it, or the address. */
  readonly dial: string;
  /** Name of the sidecar fronting this endpoint, when one does. */
  readonly sidecar: string | undefined;
}

/**
 * An instance that registered itself with the control plane (a sidecar joined with flags): an endpoint
 * of its service, reached at its advertised address (its sidecar's inbound listener).
 */
export interface RegisteredInstance {
  /** Its sidecar's name, unique in the mesh. */
  readonly name: string;
  readonly service: string;
  /** host:port where other sidecars reach it: its sidecar's inbound listener. */
  readonly address: string;
  readonly labels: Labels;
}

export interface LoadBalancerSpec {
  readonly policy: LoadBalancerPolicy;
  readonly hashHeader: string | undefined;
  readonly virtualNodes: number;
  readonly decayMs: number;
}

export interface ServiceSpec {
  readonly name: string;
  readonly endpoints: readonly EndpointSpec[];
  readonly loadBalancer: LoadBalancerSpec;
  readonly healthCheck: Readonly<HealthCheckConfig> | undefined;
  readonly outlierDetection: Readonly<OutlierDetectionConfig> | undefined;
  readonly circuitBreaker: Readonly<CircuitBreakerConfig> | undefined;
  readonly panicThreshold: number;
  /** What its app speaks. */
  readonly protocol: ServiceProtocol;
}

export interface DestinationSpec {
  readonly service: string;
  readonly subset: Labels | undefined;
  /** Stable name of the subset, e.g. `version=v2`; '' for the whole service. */
  readonly subsetKey: string;
  readonly weight: number;
}

export interface RetryPolicySpec {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  readonly retryOn: ReadonlySet<RetryOnCondition>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retryNonIdempotent: boolean;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  readonly budget: { readonly ratio: number; readonly minPerSecond: number };
  readonly bufferLimit: number;
}

export interface RouteSpec {
  readonly name: string;
  readonly matches: RouteMatcher;
  readonly destinations: readonly DestinationSpec[];
  readonly totalWeight: number;
  readonly timeoutMs: number | undefined;
  readonly idleTimeoutMs: number | undefined;
  readonly retries: RetryPolicySpec | undefined;
  /** True for the implicit route a service gets when no route names its host. */
  readonly implicit: boolean;
}

export interface SidecarSpec extends Readonly<SidecarConfig> {
  readonly name: string;
}

/** What a request reads of the snapshot it started on: the routes, and whether responses name their faults. */
export interface RequestSnapshot {
  readonly version: string;
  readonly routes: readonly RouteSpec[];
  readonly config: { readonly faultInjection: { readonly responseHeader: boolean } };
}
