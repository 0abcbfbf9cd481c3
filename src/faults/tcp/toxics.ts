// The L4 toxics (Toxiproxy's set), one stage class per kind. A stage is a Duplex between the two
// sockets of one direction of a connection: incoming chunks become queued pieces, each let out no
// earlier than its release time, in order, with backpressure both ways (a full queue holds the writer,
// a full reader holds the queue). A stage whose fault is removed lets its held pieces out at once: it
// re-checks while waiting at least every POLL_MS. Timers live and die with the stage.
import { Duplex } from 'node:stream';

type Callback = (error?: Error | null) => void;

export type TcpToxicSpec =
  | { readonly kind: 'latency'; readonly latencyMs: number; readonly jitterMs: number }
  | { readonly kind: 'bandwidth'; readonly bytesPerSecond: number }
  | { readonly kind: 'reset_peer'; readonly afterMs: number }
  | { readonly kind: 'timeout'; readonly afterMs: number }
  | { readonly kind: 'slicer'; readonly averageSize: number; readonly sizeVariation: number; readonly delayMs: number }
  | { readonly kind: 'limit_data'; readonly bytes: number };

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

/**
 * Each chunk goes out latency ± jitter (uniform) after it came in, never before an earlier one. Up to
 * 1 MiB is in flight, so a delayed line still carries 10 MiB/s at 100 ms.
 */
export class LatencyStage extends ToxicStage {
  readonly #latencyMs: number;
  readonly #jitterMs: number;
  #lastRelease = 0;

  constructor(link: ToxicLink, spec: { readonly latencyMs: number; readonly jitterMs: number }) {
    super(link, 1024 * 1024);
    this.#latencyMs = Math.max(0, spec.latencyMs);
    this.#jitterMs = Math.max(0, spec.jitterMs);
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active() || (this.#latencyMs === 0 && this.#jitterMs === 0)) return this.enqueue(chunk);
    this.link.applied();
    const delay = Math.max(0, this.#latencyMs + this.#jitterMs * (2 * Math.random() - 1));
    this.#lastRelease = Math.max(performance.now() + delay, this.#lastRelease);
    this.enqueue(chunk, this.#lastRelease);
  }
}

/**
 * At most bytesPerSecond on average: each piece (at most 100 ms worth) goes out once the time its bytes
 * cost has passed since the previous one went out, or since it arrived when the line was idle.
 * A rate of 0 or less does not throttle (as Toxiproxy).
 */
export class BandwidthStage extends ToxicStage {
  readonly #bytesPerSecond: number;
  readonly #pieceSize: number;
  #clock = 0;

  constructor(link: ToxicLink, spec: { readonly bytesPerSecond: number }) {
    super(link);
    this.#bytesPerSecond = spec.bytesPerSecond;
    this.#pieceSize = Math.max(1, Math.floor(spec.bytesPerSecond / 10));
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active() || !(this.#bytesPerSecond > 0)) return this.enqueue(chunk);
    this.link.applied();
    for (let offset = 0; offset < chunk.length; offset += this.#pieceSize) {
      const piece = chunk.subarray(offset, offset + this.#pieceSize);
      this.enqueue(piece, (now) => (this.#clock = Math.max(now, this.#clock) + (piece.length * 1000) / this.#bytesPerSecond));
    }
  }
}

/** After afterMs (from the connection's start), both sockets are reset. Data passes untouched until then. */
export class ResetPeerStage extends ToxicStage {
  readonly #afterMs: number;

  constructor(link: ToxicLink, spec: { readonly afterMs: number }) {
    super(link);
    this.#afterMs = spec.afterMs;
  }

  override start(): void {
    this.alarm(this.#afterMs, () => {
      if (!this.link.active()) return;
      this.link.applied();
      this.link.reset();
    });
  }

  protected admit(chunk: Buffer): void {
    this.enqueue(chunk);
  }
}

/**
 * No data passes (it is held, and let go if the fault is removed); after afterMs (from the
 * connection's start) the held data is dropped and the connection closed. afterMs 0 holds forever.
 */
export class TimeoutStage extends ToxicStage {
  readonly #afterMs: number;

  constructor(link: ToxicLink, spec: { readonly afterMs: number }) {
    super(link);
    this.#afterMs = spec.afterMs;
  }

  override start(): void {
    if (this.#afterMs <= 0) return;
    this.alarm(this.#afterMs, () => {
      if (!this.link.active()) return;
      this.link.applied();
      this.discard();
      this.link.close();
    });
  }

  override closing(): void {
    if (this.link.active()) this.discard();
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active()) return this.enqueue(chunk);
    this.link.applied();
    this.enqueue(chunk, Number.POSITIVE_INFINITY);
  }
}

/** Each chunk goes out in pieces of averageSize ± sizeVariation bytes (uniform, at least 1), each delayMs after the one before. */
export class SlicerStage extends ToxicStage {
  readonly #averageSize: number;
  readonly #sizeVariation: number;
  readonly #delayMs: number;

  constructor(link: ToxicLink, spec: { readonly averageSize: number; readonly sizeVariation: number; readonly delayMs: number }) {
    super(link);
    this.#averageSize = Math.max(1, Math.floor(spec.averageSize));
    this.#sizeVariation = Math.max(0, Math.min(Math.floor(spec.sizeVariation), this.#averageSize - 1));
    this.#delayMs = Math.max(0, spec.delayMs);
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active()) return this.enqueue(chunk);
    this.link.applied();
    const spaced = (_now: number, lastPushAt: number): number => lastPushAt + this.#delayMs;
    let offset = 0;
    while (offset < chunk.length) {
      const variation = Math.floor(Math.random() * (2 * this.#sizeVariation + 1)) - this.#sizeVariation;
      const size = Math.max(1, this.#averageSize + variation);
      this.enqueue(chunk.subarray(offset, offset + size), spaced);
      offset += size;
    }
  }
}

/** Lets `bytes` through in its direction (counting all bytes, the fault active or not), then closes the connection. */
export class LimitDataStage extends ToxicStage {
  readonly #limit: number;
  #passed = 0;
  #reached = false;

  constructor(link: ToxicLink, spec: { readonly bytes: number }) {
    super(link);
    this.#limit = Math.max(0, Math.floor(spec.bytes));
  }

  override start(): void {
    if (this.#limit === 0 && this.link.active()) this.#reach();
  }

  protected admit(chunk: Buffer): void {
    if (this.#reached) return;
    const left = this.#limit - this.#passed;
    this.#passed += chunk.length;
    if (!this.link.active() || chunk.length < left) return this.enqueue(chunk);
    this.enqueue(chunk.subarray(0, Math.max(0, left)));
    this.#reach();
  }

  #reach(): void {
    this.#reached = true;
    this.link.applied();
    this.link.close();
  }
}

export function createStage(spec: TcpToxicSpec, link: ToxicLink): ToxicStage {
  switch (spec.kind) {
    case 'latency':
      return new LatencyStage(link, spec);
    case 'bandwidth':
      return new BandwidthStage(link, spec);
    case 'reset_peer':
      return new ResetPeerStage(link, spec);
    case 'timeout':
      return new TimeoutStage(link, spec);
    case 'slicer':
      return new SlicerStage(link, spec);
    case 'limit_data':
      return new LimitDataStage(link, spec);
  }
}
