// The retry budget, as Linkerd's: over a sliding 10 s window, retries may add at most `ratio` of the
// requests, plus `minPerSecond` each second so that low traffic can still retry. A spent budget turns
// a would-be retry into the failure itself (flag UBX): this is what stops a retry storm from
// multiplying the load on a struggling service.
const WINDOW_SECONDS = 10;

export class RetryBudget {
  ratio: number;
  minPerSecond: number;
  readonly #now: () => number;
  /** Per-second buckets of [requests, retries], indexed by second modulo the window. */
  readonly #requests = new Float64Array(WINDOW_SECONDS);
  readonly #retries = new Float64Array(WINDOW_SECONDS);
  readonly #stamps = new Float64Array(WINDOW_SECONDS).fill(-1);

  constructor(ratio: number, minPerSecond: number, now: () => number = Date.now) {
    this.ratio = ratio;
    this.minPerSecond = minPerSecond;
    this.#now = now;
  }

  recordRequest(): void {
    this.#requests[this.#bucket()]!++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const bucket = this.#bucket();
    const { requests, retries } = this.totals();
    if (retries + 1 > this.ratio * requests + this.minPerSecond * WINDOW_SECONDS) return false;
    this.#retries[bucket]!++;
    return true;
  }

  /** Requests, retries and what is left in the window now. */
  totals(): { requests: number; retries: number; remaining: number } {
    this.#bucket();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    return { requests, retries, remaining: Math.max(0, Math.floor(this.ratio * requests + this.minPerSecond * WINDOW_SECONDS - retries)) };
  }

  /** The bucket of the current second, cleared first when it last held an older second. */
  #bucket(): number {
    const second = Math.floor(this.#now() / 1000);
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      if (this.#stamps[i]! !== -1 && second - this.#stamps[i]! >= WINDOW_SECONDS) {
        this.#requests[i] = 0;
        this.#retries[i] = 0;
        this.#stamps[i] = -1;
      }
    }
    const index = second % WINDOW_SECONDS;
    if (this.#stamps[index] !== second) {
      this.#requests[index] = 0;
      this.#retries[index] = 0;
      this.#stamps[index] = second;
    }
    return index;
  }
}

/** One budget per route in a sidecar, kept across reloads (settings follow the config). */
export class RetryBudgets {
  readonly #budgets = new Map<string, RetryBudget>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  for(route: string, settings: { ratio: number; minPerSecond: number }): RetryBudget {
    let budget = this.#budgets.get(route);
    if (!budget) {
      budget = new RetryBudget(settings.ratio, settings.minPerSecond, this.#now);
      this.#budgets.set(route, budget);
    }
    budget.ratio = settings.ratio;
    budget.minPerSecond = settings.minPerSecond;
    return budget;
  }

  entries(): IterableIterator<[string, RetryBudget]> {
    return this.#budgets.entries();
  }
}
