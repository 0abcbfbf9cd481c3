// The endpoints a sidecar balances over, service by service, and the registry that keeps each one's
// state across snapshots: an endpoint that stays in the config keeps its health, ejection and load.
import type { ServiceSpec, Snapshot } from '../config/snapshot.ts';
import { selects } from '../config/references.ts';
import { EndpointState } from '../http/endpoint-state.ts';
import { createBalancer, type Balancer } from './balancer/index.ts';

/** One service's endpoints as of a snapshot, with its balancer and pre-computed subsets. */
export class Cluster {
  readonly spec: ServiceSpec;
  readonly endpoints: readonly EndpointState[];
  readonly balancer: Balancer;
  readonly #subsets = new Map<string, readonly EndpointState[]>();

  constructor(spec: ServiceSpec, endpoints: readonly EndpointState[]) {
    this.spec = spec;
    this.endpoints = endpoints;
    this.balancer = createBalancer(spec.loadBalancer);
    this.#subsets.set('', endpoints);
  }

  get name(): string {
    return this.spec.name;
  }

  subset(key: string, labels: Readonly<Record<string, string>> | undefined): readonly EndpointState[] {
    let members = this.#subsets.get(key);
    if (!members) {
      members = this.endpoints.filter((e) => !labels || selects(labels, e.spec.labels));
      this.#subsets.set(key, members);
    }
    return members;
  }
}

export type Clusters = ReadonlyMap<string, Cluster>;

/** Keeps EndpointState objects by (service, address) so that state survives reloads. */
export class EndpointRegistry {
  #states = new Map<string, EndpointState>();

  reconcile(snapshot: Snapshot): Clusters {
    const next = new Map<string, EndpointState>();
    const clusters = new Map<string, Cluster>();
    for (const service of snapshot.services.values()) {
      const endpoints = service.endpoints.map((spec) => {
        const key = `${spec.service}/${spec.address}`;
        const state = this.#states.get(key) ?? new EndpointState(spec);
        state.spec = spec;
        next.set(key, state);
        return state;
      });
      clusters.set(service.name, new Cluster(service, endpoints));
    }
    this.#states = next;
    return clusters;
  }
}
