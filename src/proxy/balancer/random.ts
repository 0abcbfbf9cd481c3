// Uniformly random choice.
import type { EndpointState } from '../../http/endpoint-state.ts';
import { randomIndex, type Balancer } from './balancer.ts';

export class RandomBalancer implements Balancer {
  pick(candidates: readonly EndpointState[]): EndpointState {
    return candidates[randomIndex(candidates.length)]!;
  }
}
