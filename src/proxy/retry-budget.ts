// The retry budget, as Linkerd's: over a sliding 10 s window, retries may add at most `ratio` of the
// requests, plus `minPerSecond` each second so that low traffic can still retry. A spent budget turns
// a would-be retry into the failure itself (flag UBX): this is what stops a retry storm from
// multiplying the load on a struggling service.
import { SlidingWindow } from './sliding-window.ts';

const WINDOW_SECONDS = 10;

export class RetryBudget {
  ratio: number;
  minPerSecond: number;
  /** Series 0: requests; series 1: retries. */
  readonly #window: SlidingWindow;

  constructor(ratio: number, minPerSecond: number, now: () => number = Date.now) {
    this.ratio = ratio;
    this.minPerSecond = minPerSecond;
    this.#window = new SlidingWindow(WINDOW_SECONDS, 2, now);
  }

  recordRequest(): void {
    this.#window.add(0);
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    if (this.totals().remaining < 1) return false;
    this.#window.add(1);
    return true;
  }

  /** Requests, retries and what is left in the window now. */
  totals(): { requests: number; retries: number; remaining: number } {
    const [requests = 0, retries = 0] = this.#window.totals();
    return { requests, retries, remaining: Math.max(0, Math.floor(this.ratio * requests + this.minPerSecond * WINDOW_SECONDS - retries)) };
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
