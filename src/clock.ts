// The time the parts that wait read and wait on — a game day's leases, halts and rollback, the load's
// schedule, certificate renewal —: the system's, or a virtual one that a test moves, so that they can
// be tested to the millisecond without waiting.

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` once after `ms`; returns what cancels it. */
  after(ms: number, fn: () => void): () => void;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): () => void;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
  every: (ms, fn) => {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A clock time as the journal writes it. */
export function isoAt(ms: number): string {
  return new Date(ms).toISOString();
}
