// The circuit breakers of one sidecar, one per destination (service and subset), kept across reloads
// so that an open circuit stays open when the config changes around it.
import type { DestinationSpec, ServiceSpec } from '../../config/snapshot.ts';
import type { EventBus } from '../../telemetry/events.ts';
import { CircuitBreaker } from './circuit-breaker.ts';

export class Breakers {
  readonly #breakers = new Map<string, CircuitBreaker>();
  /** Per destination object of a snapshot: the retry and breaker layers both ask, on every request. */
  readonly #byDestination = new WeakMap<DestinationSpec, CircuitBreaker | null>();
  readonly #events: EventBus;
  readonly #now: () => number;

  constructor(events: EventBus, now: () => number = Date.now) {
    this.#events = events;
    this.#now = now;
  }

  /** The destination's breaker, or undefined when its service has none configured. */
  for(service: ServiceSpec, destination: DestinationSpec): CircuitBreaker | undefined {
    const known = this.#byDestination.get(destination);
    if (known !== undefined) return known ?? undefined;
    const breaker = this.#lookup(service, destination);
    this.#byDestination.set(destination, breaker ?? null);
    return breaker;
  }

  #lookup(service: ServiceSpec, destination: DestinationSpec): CircuitBreaker | undefined {
    const config = service.circuitBreaker;
    if (!config) return undefined;
    const key = `${destination.service}/${destination.subsetKey}`;
    let breaker = this.#breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(destination.service, destination.subsetKey, config, this.#events, this.#now);
      this.#breakers.set(key, breaker);
    }
    breaker.reconfigure(config);
    return breaker;
  }

  all(): CircuitBreaker[] {
    return [...this.#breakers.values()];
  }
}
