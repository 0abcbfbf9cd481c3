// Virtual time for what waits (a game day's parts, the load's schedule, certificate renewal): timers fire only when a test moves the time past them, in
// time order, with the promise chains they start settled before the next one fires.
import type { Clock } from '../../src/clock.ts';

interface Timer {
  at: number;
  readonly every: number | undefined;
  readonly fn: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  readonly #timers = new Set<Timer>();

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): () => void {
    return this.#add({ at: this.#now + ms, every: undefined, fn });
  }

  every(ms: number, fn: () => void): () => void {
    return this.#add({ at: this.#now + ms, every: ms, fn });
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Timers still set (not fired, not cancelled). */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the timers still set are due, in milliseconds from now, soonest first. */
  get due(): number[] {
    return [...this.#timers].map((t) => t.at - this.#now).sort((x, y) => x - y);
  }

  /** Moves the time `ms` on, firing each timer due on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = [...this.#timers].filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#now = next.at;
      if (next.every === undefined) this.#timers.delete(next);
      else next.at += next.every;
      next.fn();
      await settle();
    }
    this.#now = target;
  }

  #add(timer: Timer): () => void {
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }
}

/** Lets every promise chain that waits on nothing but other promises run to its end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
