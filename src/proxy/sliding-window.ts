// Counts over a sliding window of whole seconds (per-second buckets), for rates that must forget the
// past: the retry budget's requests and retries, a circuit breaker's requests and failures.
export class SlidingWindow {
  readonly seconds: number;
  readonly #now: () => number;
  readonly #stamps: Float64Array;
  readonly #counts: Float64Array[];
  /** The second #current last saw: within it, nothing has left the window since. */
  #lastSecond = -1;

  constructor(seconds: number, series: number, now: () => number = Date.now) {
    this.seconds = Math.max(1, Math.round(seconds));
    this.#now = now;
    this.#stamps = new Float64Array(this.seconds).fill(-1);
    this.#counts = Array.from({ length: series }, () => new Float64Array(this.seconds));
  }

  add(series: number, amount = 1): void {
    this.#counts[series]![this.#current()]! += amount;
  }

  /** The total of each series over the window. */
  totals(): number[] {
    this.#current();
    return this.#counts.map((counts) => counts.reduce((sum, n) => sum + n, 0));
  }

  reset(): void {
    this.#lastSecond = -1;
    this.#stamps.fill(-1);
    for (const counts of this.#counts) counts.fill(0);
  }

  /** The bucket of the current second; buckets of seconds that left the window are cleared first. */
  #current(): number {
    const second = Math.floor(this.#now() / 1000);
    // Most calls come within the second of the last (a request's record, then its retry's): no sweep.
    if (second === this.#lastSecond) return second % this.seconds;
    for (let i = 0; i < this.seconds; i++) {
      const stamp = this.#stamps[i]!;
      if (stamp !== -1 && second - stamp >= this.seconds) this.#clear(i);
    }
    const index = second % this.seconds;
    if (this.#stamps[index] !== second) {
      this.#clear(index);
      this.#stamps[index] = second;
    }
    this.#lastSecond = second;
    return index;
  }

  #clear(index: number): void {
    this.#stamps[index] = -1;
    for (const counts of this.#counts) counts[index] = 0;
  }
}
