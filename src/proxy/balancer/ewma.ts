// Latency-aware P2C with peak-EWMA (as Linkerd's): of two random candidates, the one with the lower
// cost = EWMA of response latency × (requests in flight + 1). A slow endpoint sheds load quickly and
// wins it back as its latency decays.
import type { EndpointState } from '../../http/endpoint-state.ts';
import { twoChoices, type Balancer } from './balancer.ts';

export class EwmaBalancer implements Balancer {
  pick(candidates: readonly EndpointState[]): EndpointState {
    const [a, b] = twoChoices(candidates);
    return cost(b) < cost(a) ? b : a;
  }
}

function cost(endpoint: EndpointState): number {
  return endpoint.load.ewmaMs * (endpoint.load.active + 1);
}
