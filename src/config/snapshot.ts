// A Snapshot is the compiled, immutable form of one mesh config: what every layer reads during a
// request. Its version is a content hash, so the same config always has the same version.
import { createHash } from 'node:crypto';
import { compileRouteMatch, type RouteMatcher } from './matchers.ts';
import type { MeshConfig, RetriesConfig } from './schema.ts';
import { Service, type SidecarConfig } from './resources.ts';
import type { DestinationSpec, EndpointSpec, Labels, RegisteredInstance, RetryPolicySpec, RouteSpec, ServiceSpec, SidecarSpec } from './specs.ts';

export type {
  DestinationSpec,
  EndpointSpec,
  Labels,
  LoadBalancerSpec,
  RequestSnapshot,
  RegisteredInstance,
  RetryPolicySpec,
  RouteSpec,
  ServiceSpec,
  SidecarSpec,
} from './specs.ts';

export interface Snapshot {
  readonly version: string;
  readonly source: string;
  readonly mesh: { readonly name: string };
  readonly config: Readonly<MeshConfig>;
  readonly services: ReadonlyMap<string, ServiceSpec>;
  readonly routes: readonly RouteSpec[];
  readonly sidecars: readonly SidecarSpec[];
}

/** Ring points per endpoint, as ketama's: fixed, so that only the keys of an endpoint that leaves move. */
export const DEFAULT_VIRTUAL_NODES = 160;
export const DEFAULT_EWMA_DECAY_MS = 10_000;

/** What the control plane adds to the file: registered instances; and, in a sidecar joined with flags, its own entry. */
export interface SnapshotExtras {
  readonly instances?: readonly RegisteredInstance[];
  /** The sidecar's own entry when it joined with flags (not in the file); local, so not part of the version. */
  readonly self?: SidecarConfig & { readonly name: string };
}

export function compileSnapshot(file: MeshConfig, source: string, extras: SnapshotExtras = {}): Snapshot {
  const instances = [...(extras.instances ?? [])].sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
  const config = withExtras(file, instances, extras.self);
  const sidecars = config.sidecars.map((s): SidecarSpec => Object.freeze({ ...s, name: s.name ?? s.service }));
  const sidecarByApp = new Map(sidecars.filter((s) => s.app !== undefined).map((s) => [s.app, s]));
  const services = new Map(
    config.services.map((service): [string, ServiceSpec] => {
      const lb = typeof service.loadBalancer === 'string' ? { policy: service.loadBalancer } : service.loadBalancer;
      return [
        service.name,
        Object.freeze({
          name: service.name,
          endpoints: Object.freeze(
            service.endpoints.map((e): EndpointSpec => {
              // A registered instance is its sidecar's inbound listener: dialled as it is.
              const registered = (e as { registered?: string }).registered;
              if (registered !== undefined) return Object.freeze({ service: service.name, address: e.address, labels: Object.freeze({ ...e.labels }), dial: e.address, sidecar: registered });
              const sidecar = sidecarByApp.get(e.address);
              return Object.freeze({
                service: service.name,
                address: e.address,
                labels: Object.freeze({ ...e.labels }),
                dial: sidecar?.inbound ?? e.address,
                sidecar: sidecar?.name,
              });
            }),
          ),
          loadBalancer: Object.freeze({
            policy: lb.policy,
            hashHeader: 'hashOn' in lb ? lb.hashOn?.header.toLowerCase() : undefined,
            virtualNodes: ('virtualNodes' in lb ? lb.virtualNodes : undefined) ?? DEFAULT_VIRTUAL_NODES,
            decayMs: ('decay' in lb ? lb.decay : undefined) ?? DEFAULT_EWMA_DECAY_MS,
          }),
          healthCheck: service.healthCheck && Object.freeze({ ...service.healthCheck }),
          outlierDetection: service.outlierDetection && Object.freeze({ ...service.outlierDetection }),
          circuitBreaker: service.circuitBreaker && deepFreeze(structuredClone(service.circuitBreaker)),
          panicThreshold: service.healthyPanicThreshold,
          protocol: service.protocol,
        }),
      ];
    }),
  );
  return Object.freeze({
    version: createHash('sha256').update(JSON.stringify(file)).update(instances.length > 0 ? JSON.stringify(instances) : '').digest('hex').slice(0, 16),
    source,
    mesh: Object.freeze({ name: config.mesh.name }),
    config: deepFreeze(structuredClone(config)),
    services,
    routes: Object.freeze(compileRoutes(config)),
    sidecars: Object.freeze(sidecars),
  });
}

/**
 * The file with what registered: a service an instance names that the file does not declare is added
 * with the defaults (instances come and go without editing the file); each instance is an endpoint of
 * its service, dialled at its own address, unless the file lists that address already; a joined
 * sidecar's own entry is added when the file has none of its name.
 */
function withExtras(file: MeshConfig, instances: readonly RegisteredInstance[], self: SnapshotExtras['self']): MeshConfig {
  if (instances.length === 0 && self === undefined) return file;
  const declared = new Set(file.services.map((s) => s.name));
  const added = [...new Set(instances.map((i) => i.service))].filter((name) => !declared.has(name)).map((name) => Service.parse({ name }));
  const services = [...file.services, ...added].map((service) => {
    const mine = instances.filter((i) => i.service === service.name && !service.endpoints.some((e) => e.address === i.address));
    return mine.length === 0 ? service : { ...service, endpoints: [...service.endpoints, ...mine.map((i) => ({ address: i.address, labels: { ...i.labels }, registered: i.name }))] };
  });
  const sidecars = self && !file.sidecars.some((s) => (s.name ?? s.service) === self.name) ? [...file.sidecars, self] : file.sidecars;
  return { ...file, services, sidecars };
}

/** Explicit routes in file order (first match wins), then an implicit route for each service whose name no route claims as host. */
function compileRoutes(config: MeshConfig): RouteSpec[] {
  const explicit = config.routes.map((route): RouteSpec => {
    const destinations = route.destinations.map(
      (d): DestinationSpec => Object.freeze({
        service: d.service,
        subset: d.subset && Object.freeze({ ...d.subset }),
        subsetKey: subsetKey(d.subset),
        weight: d.weight,
      }),
    );
    return Object.freeze({
      name: route.name,
      matches: compileRouteMatch(route.match),
      destinations: Object.freeze(destinations),
      totalWeight: destinations.reduce((sum, d) => sum + d.weight, 0),
      timeoutMs: route.timeout,
      idleTimeoutMs: route.idleTimeout,
      retries: route.retries && compileRetries(route.retries),
      implicit: false,
    });
  });
  const claimed = new Set(config.routes.map((r) => r.match.host?.toLowerCase()).filter((h) => h !== undefined));
  const implicit = config.services
    .filter((s) => !claimed.has(s.name))
    .map((s): RouteSpec => Object.freeze({
      name: `default-${s.name}`,
      matches: compileRouteMatch({ host: s.name }),
      destinations: Object.freeze([Object.freeze({ service: s.name, subset: undefined, subsetKey: '', weight: 1 })]),
      totalWeight: 1,
      timeoutMs: undefined,
      idleTimeoutMs: undefined,
      retries: undefined,
      implicit: true,
    }));
  return [...explicit, ...implicit];
}

function compileRetries(retries: RetriesConfig): RetryPolicySpec {
  return Object.freeze({
    attempts: retries.attempts,
    perTryTimeoutMs: retries.perTryTimeout,
    retryOn: new Set(retries.retryOn),
    retriableStatusCodes: new Set(retries.retriableStatusCodes),
    retryNonIdempotent: retries.retryNonIdempotent,
    backoff: Object.freeze({ baseMs: retries.backoff.base, maxMs: retries.backoff.max }),
    budget: Object.freeze({ ...retries.budget }),
    bufferLimit: retries.bufferLimit,
  });
}

export function subsetKey(subset: Labels | undefined): string {
  if (!subset) return '';
  return Object.keys(subset)
    .sort()
    .map((key) => `${key}=${subset[key]}`)
    .join(',');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
