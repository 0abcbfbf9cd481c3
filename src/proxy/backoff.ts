// Waiting between tries: exponential backoff with full jitter (AWS's "full jitter"), and a sleep that
// ends early, with the reason, when the request is cancelled.
import type { Cancellation } from '../http/cancellation.ts';

/** Delay before retry number `retry` (1 for the first retry): random in [0, min(max, base × 2^(retry-1))). */
export function fullJitter(backoff: { baseMs: number; maxMs: number }, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** (retry - 1));
  return random() * ceiling;
}

export function sleep(ms: number, cancellation: Cancellation): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unregister();
      resolve();
    }, ms);
    const unregister = cancellation.onCancel((reason) => {
      clearTimeout(timer);
      reject(reason);
    });
  });
}
