// Round robin: each candidate in turn.
import type { EndpointState } from '../../http/endpoint-state.ts';
import type { Balancer } from './balancer.ts';

export class RoundRobinBalancer implements Balancer {
  #next = 0;

  pick(candidates: readonly EndpointState[]): EndpointState {
    const endpoint = candidates[this.#next % candidates.length]!;
    this.#next = (this.#next + 1) % 0x7fffffff;
    return endpoint;
  }
}
