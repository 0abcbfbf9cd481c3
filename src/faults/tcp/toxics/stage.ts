// What every L4 toxic is at run time: a stage, a Duplex between the two sockets of one direction of a
// connection. Incoming chunks become queued pieces, each let out no earlier than its release time, in
// order, with backpressure both ways (a full queue holds the writer, a full reader holds the queue). A
// stage whose fault is removed lets its held pieces out at once: it re-checks while waiting at least
// every POLL_MS. Timers live and die with the stage.
import { Duplex } from 'node:stream';

type Callback = (error?: Error | null) => void;

/** What a stage may know of and do to its connection. */
export interface ToxicLink {
  /** Whether the toxic's fault is still in force. */
  active(): boolean;
  /** The toxic acted (on data or on the connection); the link reports only the first time. */
  applied(): void;
  /** Ends the connection: data already let through is delivered, then both sockets close. */
  close(): void;
  /** Resets both sockets (RST). */
  reset(): void;
}

/** How long a stage holding data goes without asking whether its fault is still there. */
export const POLL_MS = 50;

/** When a piece may go out: a performance.now() time, or one computed when the piece reaches the head of the queue. */
type Release = number | ((now: number, lastPushAt: number) => number);

interface Piece {
  readonly chunk: Buffer;
  release: Release | undefined;
}

/** How many bytes a stage holds before it stops taking more from its writer. */
const DEFAULT_CAPACITY = 64 * 1024;

export abstract class ToxicStage extends Duplex {
  protected readonly link: ToxicLink;
  readonly #capacity: number;
  readonly #queue: Piece[] = [];
  #queuedBytes = 0;
  #lastPushAt = 0;
  #dropping = false;
  /** The reader's buffer is full (push said so): nothing goes out until it asks again (_read). */
  #readerFull = false;
  /** The writer's callback, held while the queue is full. */
  #writeCallback: Callback | undefined;
  /** The end's callback, held until the queue is empty. */
  #finalCallback: Callback | undefined;
  #pumpTimer: NodeJS.Timeout | undefined;
  #alarmTimer: NodeJS.Timeout | undefined;

  constructor(link: ToxicLink, capacity = DEFAULT_CAPACITY) {
    super();
    this.link = link;
    this.#capacity = capacity;
  }

  /** The connection is up: connection-level timers start here. */
  start(): void {}

  /** The connection is closing; by default held data still goes out. */
  closing(): void {}

  /** Turns an incoming chunk into queued pieces (`enqueue`). */
  protected abstract admit(chunk: Buffer): void;

  protected enqueue(chunk: Buffer, release?: Release): void {
    if (chunk.length === 0) return;
    this.#queue.push({ chunk, release });
    this.#queuedBytes += chunk.length;
  }

  /** Drops held data and everything that arrives from now on. */
  protected discard(): void {
    this.#dropping = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#pump();
  }

  /** Runs `action` once `ms` have passed by performance.now() (a timer can fire a little early). */
  protected alarm(ms: number, action: () => void): void {
    const at = performance.now() + ms;
    const tick = (): void => {
      const left = at - performance.now();
      if (left > 0) {
        this.#alarmTimer = setTimeout(tick, Math.max(1, left));
        return;
      }
      this.#alarmTimer = undefined;
      if (!this.destroyed) action();
    };
    this.#alarmTimer = setTimeout(tick, Math.max(0, ms));
  }

  // A Duplex rather than a Transform: a Transform holds its writer on its own terms (until _read), which
  // deadlocks against pieces let out by timers. Here the queue alone decides.
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (this.#dropping) return callback();
    this.admit(chunk);
    this.#writeCallback = callback;
    this.#pump();
  }

  override _final(callback: Callback): void {
    this.#finalCallback = callback;
    this.#pump();
  }

  override _read(): void {
    if (!this.#readerFull) return; // pieces go out on their own timers
    this.#readerFull = false;
    this.#pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#pumpTimer);
    clearTimeout(this.#alarmTimer);
    this.#pumpTimer = this.#alarmTimer = undefined;
    this.#queue.length = 0;
    this.#writeCallback = this.#finalCallback = undefined;
    callback(error);
  }

  /** Lets out every piece that is due, then sleeps until the next one is (or until the reader wants more). */
  #pump(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    if (this.destroyed) return;
    while (this.#queue.length > 0 && !this.#readerFull) {
      const piece = this.#queue[0]!;
      const now = performance.now();
      if (this.link.active()) {
        if (typeof piece.release === 'function') piece.release = piece.release(now, this.#lastPushAt);
        const at = piece.release ?? now;
        if (now < at) {
          clearTimeout(this.#pumpTimer); // a re-entrant pump (a writer called back) may have set one
          this.#pumpTimer = setTimeout(() => this.#pump(), Math.max(1, Math.min(at - now, POLL_MS)));
          break;
        }
      }
      this.#queue.shift();
      this.#queuedBytes -= piece.chunk.length;
      this.#lastPushAt = now;
      if (!this.push(piece.chunk)) this.#readerFull = true;
    }
    if (this.#writeCallback && this.#queuedBytes < this.#capacity) {
      const callback = this.#writeCallback;
      this.#writeCallback = undefined;
      callback();
    }
    if (this.#finalCallback && this.#queue.length === 0) {
      const callback = this.#finalCallback;
      this.#finalCallback = undefined;
      this.push(null);
      callback();
    }
  }
}
