// Waiting inside a fault: a hold ends when its time is up or when the fault is removed (a deleted or
// expired fault lets held requests go on at once), and fails when the request is cancelled (the
// caller left, a timeout fired). Paced bodies (bandwidth, slicer) are built on the same hold.
import { Readable } from 'node:stream';
import type { Cancellation } from '../http/cancellation.ts';

export function hold(ms: number, cancellation: Cancellation, removed: Cancellation): Promise<void> {
  if (removed.cancelled || ms <= 0) return cancellation.cancelled ? Promise.reject(cancellation.reason) : Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    const offRemoved = removed.onCancel(() => done());
    const offCancelled = cancellation.onCancel((reason) => {
      clearTimeout(timer);
      offRemoved();
      reject(reason);
    });
    function done(): void {
      clearTimeout(timer);
      offRemoved();
      offCancelled();
      resolve();
    }
  });
}

/** The body, starting only after `ms` (or at once when the fault goes away). */
export function delayedBody(body: Readable, ms: number, cancellation: Cancellation, removed: Cancellation): Readable {
  return Readable.from(
    (async function* () {
      await hold(ms, cancellation, removed);
      yield* body;
    })(),
    { objectMode: false },
  );
}

/**
 * The body re-cut into slices, each released on a schedule: `slice` gives the next slice's size and
 * how long after the previous one it may go. Once the fault is removed, the rest flows unpaced.
 */
export function pacedBody(body: Readable, slice: () => { bytes: number; afterMs: number }, cancellation: Cancellation, removed: Cancellation): Readable {
  return Readable.from(pace(body, slice, cancellation, removed), { objectMode: false });
}

async function* pace(
  body: AsyncIterable<Buffer>,
  slice: () => { bytes: number; afterMs: number },
  cancellation: Cancellation,
  removed: Cancellation,
): AsyncGenerator<Buffer> {
  // Due times accumulate from the first byte, so timer lateness does not add up over a long body.
  let due: number | undefined;
  for await (const chunk of body) {
    let offset = 0;
    while (offset < chunk.length) {
      if (removed.cancelled) {
        yield chunk.subarray(offset);
        break;
      }
      const next = slice();
      const now = performance.now();
      due = due === undefined ? now : due + next.afterMs;
      if (due > now) await hold(due - now, cancellation, removed);
      yield chunk.subarray(offset, offset + next.bytes);
      offset += next.bytes;
    }
  }
}
