// Least request by the power of two choices (as Envoy's): of two random candidates, the one with fewer
// requests in flight. Near-optimal spread without scanning every endpoint or herding onto one.
import type { EndpointState } from '../../http/endpoint-state.ts';
import { twoChoices, type Balancer } from './balancer.ts';

export class LeastRequestBalancer implements Balancer {
  pick(candidates: readonly EndpointState[]): EndpointState {
    const [a, b] = twoChoices(candidates);
    return b.load.active < a.load.active ? b : a;
  }
}
