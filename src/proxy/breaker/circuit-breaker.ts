// One circuit breaker, for one destination (a service, or one subset of it) in one sidecar.
// Limits, as Envoy's thresholds: requests in progress (maxConnections), a bounded queue behind them
// (maxPendingRequests), requests outstanding (maxRequests) and retries in progress (maxRetries); over a
// limit, a fast 503 UO. State machine: closed → open on consecutive failures or a failure ratio over a
// sliding window; open → half-open after a cool-down that doubles with each trip in a row; half-open lets
// `halfOpenRequests` probes through and closes when all succeed, or trips again on a failure.
import type { CircuitBreakerConfig } from '../../config/schema.ts';
import { circuitOpen, upstreamOverflow } from '../../errors.ts';
import type { EventBus } from '../../telemetry/events.ts';
import type { Cancellation } from '../../http/cancellation.ts';
import { SlidingWindow } from '../sliding-window.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';
export type AttemptVerdict = 'success' | 'failure' | 'neutral';

/** One admitted attempt: released exactly once. */
export interface Ticket {
  readonly probe: boolean;
}

interface Waiter {
  admit: () => void;
  unregister: () => void;
}

export class CircuitBreaker {
  readonly service: string;
  readonly subset: string;
  config: Readonly<CircuitBreakerConfig>;
  readonly #events: EventBus;
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #trips = 0;
  #openUntil = 0;
  #consecutiveFailures = 0;
  /** Series 0: attempts judged; series 1: failures. */
  #window: SlidingWindow;
  #probesInFlight = 0;
  #probesSucceeded = 0;
  active = 0;
  retriesActive = 0;
  readonly #queue: Waiter[] = [];

  constructor(service: string, subset: string, config: Readonly<CircuitBreakerConfig>, events: EventBus, now: () => number = Date.now) {
    this.service = service;
    this.subset = subset;
    this.config = config;
    this.#events = events;
    this.#now = now;
    this.#window = new SlidingWindow((config.failureRatio?.window ?? 10_000) / 1000, 2, now);
  }

  get name(): string {
    return this.subset ? `${this.service} [${this.subset}]` : this.service;
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() >= this.#openUntil) {
      this.#probesInFlight = 0;
      this.#probesSucceeded = 0;
      this.#transition('half-open', 'cool-down elapsed', 0);
    }
    return this.#state;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Admits one attempt, waiting in the bounded queue when all slots are busy; throws a 503 UO when refused. */
  async admit(cancellation: Cancellation): Promise<Ticket> {
    const state = this.state;
    const { maxConnections, maxPendingRequests, maxRequests, halfOpenRequests } = this.config;
    if (state === 'open') throw circuitOpen(this.name, 'open');
    if (state === 'half-open' && this.#probesInFlight >= halfOpenRequests) throw circuitOpen(this.name, 'half-open, probing');
    if (this.active + this.#queue.length >= maxRequests) throw upstreamOverflow(this.name, 'maxRequests', maxRequests);
    if (this.active >= maxConnections) {
      if (this.#queue.length >= maxPendingRequests) throw upstreamOverflow(this.name, 'maxPendingRequests', maxPendingRequests);
      await this.#wait(cancellation);
    }
    return this.#take();
  }

  /**
   * Admits one attempt at once when a slot is free and nothing refuses it (the usual case, with no
   * promise to wait for); undefined otherwise, and then admit() decides whether to queue or refuse.
   */
  tryAdmit(): Ticket | undefined {
    const state = this.state;
    const { maxConnections, maxRequests, halfOpenRequests } = this.config;
    if (state === 'open' || (state === 'half-open' && this.#probesInFlight >= halfOpenRequests)) return undefined;
    if (this.active + this.#queue.length >= maxRequests || this.active >= maxConnections) return undefined;
    return this.#take();
  }

  #take(): Ticket {
    this.active++;
    const probe = this.#state === 'half-open';
    if (probe) this.#probesInFlight++;
    return { probe };
  }

  /** Judges an admitted attempt once its response has started (or it failed). */
  judge(ticket: Ticket, verdict: AttemptVerdict): void {
    if (ticket.probe) this.#probesInFlight--;
    if (verdict === 'neutral') return;
    this.#window.add(0);
    if (verdict === 'failure') {
      this.#window.add(1);
      this.#consecutiveFailures++;
    } else {
      this.#consecutiveFailures = 0;
    }
    if (ticket.probe && this.#state === 'half-open') {
      if (verdict === 'failure') this.#trip('a half-open probe failed');
      else if (++this.#probesSucceeded >= this.config.halfOpenRequests) this.#close();
      return;
    }
    if (this.#state !== 'closed' || verdict === 'success') return;
    const { consecutiveFailures, failureRatio } = this.config;
    if (consecutiveFailures !== undefined && this.#consecutiveFailures >= consecutiveFailures) {
      this.#trip(`${this.#consecutiveFailures} consecutive failures`);
      return;
    }
    if (failureRatio) {
      const [requests = 0, failures = 0] = this.#window.totals();
      if (requests >= failureRatio.minRequests && failures / requests >= failureRatio.threshold) {
        this.#trip(`failure ratio ${(failures / requests).toFixed(2)} over ${requests} requests`);
      }
    }
  }

  /** Frees the attempt's slot (when its response is over) and lets the next waiter in. */
  release(): void {
    this.active--;
    const next = this.#queue.shift();
    if (next) {
      next.unregister();
      next.admit();
    }
  }

  tryRetry(): boolean {
    if (this.retriesActive >= this.config.maxRetries) return false;
    this.retriesActive++;
    return true;
  }

  retryDone(): void {
    this.retriesActive--;
  }

  /** What the admin listener shows. */
  view(): Record<string, unknown> {
    const state = this.state;
    const [requests = 0, failures = 0] = this.#window.totals();
    return {
      service: this.service,
      subset: this.subset,
      state,
      trips: this.#trips,
      openForMs: state === 'open' ? Math.max(0, this.#openUntil - this.#now()) : 0,
      active: this.active,
      pending: this.#queue.length,
      retriesActive: this.retriesActive,
      consecutiveFailures: this.#consecutiveFailures,
      window: { seconds: this.#window.seconds, requests, failures },
    };
  }

  /** Takes new settings from a reloaded config; a changed window starts empty. */
  reconfigure(config: Readonly<CircuitBreakerConfig>): void {
    if (config === this.config) return;
    const seconds = (config.failureRatio?.window ?? 10_000) / 1000;
    if (Math.max(1, Math.round(seconds)) !== this.#window.seconds) this.#window = new SlidingWindow(seconds, 2, this.#now);
    this.config = config;
  }

  #wait(cancellation: Cancellation): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { admit: resolve, unregister: () => {} };
      waiter.unregister = cancellation.onCancel((reason) => {
        const index = this.#queue.indexOf(waiter);
        if (index !== -1) this.#queue.splice(index, 1);
        reject(reason);
      });
      if (!cancellation.cancelled) this.#queue.push(waiter);
    });
  }

  #trip(reason: string): void {
    this.#trips++;
    const { base, max } = this.config.coolDown;
    const openForMs = Math.min(max, base * 2 ** (this.#trips - 1));
    this.#openUntil = this.#now() + openForMs;
    this.#consecutiveFailures = 0;
    this.#window.reset();
    this.#transition('open', reason, openForMs);
  }

  #close(): void {
    this.#trips = 0;
    this.#consecutiveFailures = 0;
    this.#window.reset();
    this.#transition('closed', `${this.#probesSucceeded} half-open probe(s) succeeded`, 0);
  }

  #transition(to: BreakerState, reason: string, openForMs: number): void {
    const from = this.#state;
    this.#state = to;
    this.#events.emit('breaker.state', { service: this.service, subset: this.subset, from, to, reason, trips: this.#trips, openForMs });
  }
}
