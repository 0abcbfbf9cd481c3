// The balancer registry: one policy name, one module. A new policy is a new file and one line here.
import type { LoadBalancerSpec } from '../../config/snapshot.ts';
import type { Balancer } from './balancer.ts';
import { EwmaBalancer } from './ewma.ts';
import { LeastRequestBalancer } from './least-request.ts';
import { RandomBalancer } from './random.ts';
import { RingHashBalancer } from './ring-hash.ts';
import { RoundRobinBalancer } from './round-robin.ts';

export type { Balancer, PickRequest } from './balancer.ts';

export function createBalancer(spec: LoadBalancerSpec): Balancer {
  switch (spec.policy) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'least-request':
      return new LeastRequestBalancer();
    case 'random':
      return new RandomBalancer();
    case 'ring-hash':
      return new RingHashBalancer(spec.hashHeader, spec.virtualNodes);
    case 'ewma':
      return new EwmaBalancer();
  }
}
