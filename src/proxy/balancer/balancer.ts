// The contract every load-balancing policy keeps: pick one of a non-empty list of eligible endpoints.
// Eligibility (health, ejection, panic) is decided before a balancer is asked.
import type { IncomingHttpHeaders } from 'node:http';
import type { EndpointState } from '../../http/endpoint-state.ts';

export interface PickRequest {
  readonly headers: IncomingHttpHeaders;
}

export interface Balancer {
  pick(candidates: readonly EndpointState[], request: PickRequest): EndpointState;
}

export function randomIndex(length: number): number {
  return Math.floor(Math.random() * length);
}

/** Two distinct random candidates (power of two choices); the same one twice only when there is one. */
export function twoChoices(candidates: readonly EndpointState[]): [EndpointState, EndpointState] {
  const first = randomIndex(candidates.length);
  if (candidates.length === 1) return [candidates[0]!, candidates[0]!];
  const second = (first + 1 + randomIndex(candidates.length - 1)) % candidates.length;
  return [candidates[first]!, candidates[second]!];
}
