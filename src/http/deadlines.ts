// Request deadlines (route and per-try timeouts) kept in one set with one timer, instead of a Node timer
// per deadline: a request that ends in time — nearly all of them — costs a set insert and a delete, and
// allocates nothing but its own entry (the profile of issue 24 put two setTimeout/clearTimeout pairs
// per request at ~3 % of a sidecar's CPU). The timer is armed for the nearest deadline; when it fires it
// expires what is due and re-arms for the nearest left. It is never armed early: an entry is expired
// only once the clock has reached it, so a timeout never fires before its time (it may fire a little
// after, as any timer does). Deadlines that end meanwhile leave the timer armed; it then fires once
// and finds nothing due (at most one spurious wake-up per deadline length, not per request).
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import type { Clock } from '../clock.ts';

/** Monotonic milliseconds (the request path's clock), and timers that never keep the process alive: the work they bound does. */
const monotonic: Pick<Clock, 'now' | 'after'> = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms).unref();
    return () => clearTimeout(timer);
  },
};

/** What a Deadlines set holds: `at` on the set's clock, and what to do when it passes. */
export interface Deadline {
  readonly at: number;
  expire(): void;
}

export class Deadlines {
  readonly #pending = new Set<Deadline>();
  readonly #clock: Pick<Clock, 'now' | 'after'>;
  /** Cancels the armed timer. */
  #disarm: (() => void) | undefined;
  /** When the timer fires; Infinity when it is not armed. */
  #armedFor = Infinity;

  constructor(clock: Pick<Clock, 'now' | 'after'> = monotonic) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#pending.size;
  }

  add(deadline: Deadline): void {
    this.#pending.add(deadline);
    if (deadline.at < this.#armedFor) this.#arm(deadline.at);
  }

  /** The deadline no longer applies (its work ended in time); unknown ones are ignored. */
  delete(deadline: Deadline): void {
    this.#pending.delete(deadline);
  }

  #arm(at: number): void {
    this.#disarm?.();
    this.#armedFor = at;
    // Node's timers are whole milliseconds, counted from its loop's cached clock: rounded up, never early.
    this.#disarm = this.#clock.after(Math.max(1, Math.ceil(at - this.#clock.now())), () => this.#fire());
  }

  #fire(): void {
    this.#disarm = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    let due: Deadline[] | undefined;
    let nearest = Infinity;
    for (const deadline of this.#pending) {
      if (deadline.at <= now) (due ??= []).push(deadline);
      else if (deadline.at < nearest) nearest = deadline.at;
    }
    // Re-armed before anything expires: a deadline that throws leaves the others kept.
    if (nearest < Infinity) this.#arm(nearest);
    if (!due) return;
    for (const deadline of due) this.#pending.delete(deadline);
    for (const deadline of due) deadline.expire();
  }
}
