// The open model's schedule: arrival i is due at t0 + i × 1000 / rate, every due time computed from the
// start (never from the previous wake), so timer lateness does not accumulate. One timer at a time; on
// each wake every arrival already due is started, so a late timer makes starts late, never fewer.
import type { Clock } from '../../clock.ts';

export class Arrivals {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** Arrivals due before the end: the ones with t0 + i × interval < t0 + duration. */
  readonly #count: number;
  readonly #onDue: (index: number, dueAt: number) => void;
  #t0 = 0;
  #next = 0;
  #cancel: (() => void) | undefined;
  #end: ((to: number) => void) | undefined;

  constructor(clock: Clock, rate: number, durationMs: number, onDue: (index: number, dueAt: number) => void) {
    this.#clock = clock;
    this.#intervalMs = 1000 / rate;
    this.#count = Math.ceil((durationMs * rate) / 1000);
    this.#onDue = onDue;
  }

  /** Starts the schedule; resolves with its span once the last arrival is started, or at a stop. */
  run(): Promise<{ from: number; to: number }> {
    this.#t0 = this.#clock.now();
    return new Promise((resolve) => {
      this.#end = (to) => resolve({ from: this.#t0, to });
      this.#wake();
    });
  }

  /** No arrival starts after this. */
  stop(): void {
    this.#cancel?.();
    this.#finish(this.#clock.now());
  }

  #dueAt(index: number): number {
    return this.#t0 + index * this.#intervalMs;
  }

  #wake(): void {
    this.#cancel = undefined;
    const now = this.#clock.now();
    while (this.#end && this.#next < this.#count && this.#dueAt(this.#next) <= now) this.#onDue(this.#next, this.#dueAt(this.#next++));
    if (!this.#end) return; // stopped by an arrival's handler
    if (this.#next >= this.#count) return this.#finish(this.#t0 + this.#count * this.#intervalMs);
    // Rounded up: a timer that fires before the due time would wake for nothing.
    this.#cancel = this.#clock.after(Math.max(1, Math.ceil(this.#dueAt(this.#next) - now)), () => this.#wake());
  }

  #finish(to: number): void {
    const end = this.#end;
    this.#end = undefined;
    end?.(to);
  }
}
