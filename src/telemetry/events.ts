// The typed events the proxy emits for every decision that analysis needs. Names and payloads are
// declared here and nowhere else. Consumers subscribe in process; events are numbered and the last
// ones kept in two bounded rings (requests, decisions), so that a recorder reading over HTTP
// (/events?since=N) can resume.
import { performance } from 'node:perf_hooks';

export interface EventBase {
  /** The event's name, as in MeshEvents. */
  readonly type: string;
  /** Position in this sidecar's stream: 1, 2, 3, ... */
  readonly seq: number;
  /** Milliseconds since the Unix epoch. */
  readonly time: number;
  /** Monotonic milliseconds (performance.now()), for ordering and durations. */
  readonly monotonic: number;
  readonly sidecar: string;
  /** On an event relayed into a merged stream (the control plane's): its seq in its sidecar's own stream. */
  readonly sourceSeq?: number;
}

export interface MeshEvents {
  'request.done': EventBase & {
    requestId: string;
    traceId: string | null;
    direction: 'outbound' | 'inbound';
    source: string;
    service: string | null;
    route: string | null;
    endpoint: string | null;
    method: string;
    /** What the caller spoke: HTTP/1.1 or HTTP/2 (inbound under mTLS: what ALPN chose). */
    protocol: 'http1' | 'http2';
    authority: string;
    path: string;
    /** 0 when the caller left before a response could be written. */
    status: number;
    /** The gRPC status the caller got (0 OK, 14 UNAVAILABLE, …: src/http/grpc.ts); null for a call that is not gRPC. */
    grpcStatus: number | null;
    flags: string[];
    attempts: number;
    durationMs: number;
    /** Request body bytes; null for a chunked body streamed through uncounted. */
    requestBytes: number | null;
    /** Response body bytes sent to the caller. */
    responseBytes: number;
    /** Ids of the faults injected into this request (at any point, in any attempt), in order. */
    faults: string[];
  };
  'fault.applied': EventBase & {
    faultId: string;
    action: string;
    /** Where it was injected: request, attempt or inbound; health-check (a partition); tcp (a connection on a tcp listener). */
    point: 'request' | 'attempt' | 'inbound' | 'health-check' | 'tcp';
    /** The n-th request this fault matched (1, 2, ...): with the seed, what its decision was drawn from. */
    ordinal: number;
    requestId: string | null;
    traceId: string | null;
    /** The try it was injected into (attempt faults), else 0. */
    attempt: number;
    source: string;
    destination: string;
    /** The instance it hit (address): known after balancing and inbound; null at request, at an attempt before balancing, on a tcp connection. */
    endpoint: string | null;
    /** What was drawn: a delay's length, an abort's status, a partition's mode. */
    details: Record<string, string | number | boolean>;
  };
  'fault.installed': EventBase & { faultId: string; action: string; origin: 'config' | 'runtime'; expiresAt: string | null };
  'fault.removed': EventBase & { faultId: string; origin: 'config' | 'runtime'; reason: 'deleted' | 'expired' | 'replaced' | 'config'; applied: number };
  'health.changed': EventBase & { service: string; endpoint: string; healthy: boolean; reason: string };
  'outlier.ejected': EventBase & {
    service: string;
    endpoint: string;
    ejections: number;
    durationMs: number;
    /** Why, in words with the numbers ("p90 1004 ms over 21 tries > 3 × the siblings' median p90 2.1 ms ..."). */
    reason: string;
    detector: 'consecutive-5xx' | 'consecutive-gateway-errors' | 'failure-percentage' | 'latency';
    /** The numbers that made it eject (failurePercent, threshold; latencyMs, siblingsMedianMs, factor; consecutive...). */
    figures: Record<string, number>;
  };
  'outlier.restored': EventBase & { service: string; endpoint: string };
  'retry.attempt': EventBase & {
    requestId: string;
    traceId: string | null;
    route: string;
    service: string;
    /** The try about to start (2 for the first retry). */
    attempt: number;
    reason: string;
    failedEndpoint: string | null;
    backoffMs: number;
  };
  'breaker.state': EventBase & {
    service: string;
    subset: string;
    from: 'closed' | 'open' | 'half-open';
    to: 'closed' | 'open' | 'half-open';
    reason: string;
    /** Trips in a row; the cool-down grows with it. */
    trips: number;
    /** When opening: how long until half-open. */
    openForMs: number;
  };
  'authz.denied': EventBase & { requestId: string; traceId: string | null; source: string; destination: string; method: string; path: string; reason: string };
  /** The emergency stop (control plane POST /halt, `faultline stop`): every runtime fault removed. */
  'mesh.halted': EventBase & { by: string; reason: string; deleted: string[] };
  /**
   * A sidecar's metric samples that changed in the last second (histogram buckets left out: request
   * durations are in request.done), pushed up with its events while someone records (uplink.ts).
   */
  'metrics.sample': EventBase & { samples: Record<string, number> };
  'config.applied': EventBase & { version: string; source: string };
  'config.rejected': EventBase & { source: string; error: string };
}
export type MeshEventName = keyof MeshEvents;
export type MeshEvent = MeshEvents[MeshEventName];
type Payload<K extends MeshEventName> = Omit<MeshEvents[K], keyof EventBase>;
type Mutable<T> = { -readonly [P in keyof T]: T[P] };

/**
 * How many events a bus keeps for readers that resume (/events?since=N), in two rings: request.done,
 * one per request and the bulk of the stream, and everything else — the decisions (faults, retries,
 * breakers, health, config), rarer and what a late reader most needs. Kept events outlive the
 * young-generation collections and are promoted, which costs the data plane: with 1,024 request.done
 * kept a sidecar served 0.921× the requests per CPU-second of telemetry off, with none 0.976×
 * (docs/benchmarks.md). So by default (`keepRequests: 'while-read'`) request.done are kept only while
 * a reader takes them, and for `graceMs` after the last one leaves (time to reconnect and resume);
 * decisions always.
 */
export interface EventHistory {
  readonly requests: number;
  readonly decisions: number;
  /** Keep request.done always (the default when not given), or only while read. */
  readonly keepRequests?: 'always' | 'while-read';
  /** With 'while-read': how long after the last reader of request.done left they are still kept. */
  readonly graceMs?: number;
}

export const DEFAULT_HISTORY: EventHistory = { requests: 1_024, decisions: 10_000, keepRequests: 'while-read' };
export const REQUESTS_GRACE_MS = 60_000;

export class EventBus {
  /**
   * Listeners by event name, and '*' for every event: kept here rather than in an EventEmitter, whose
   * emit gathers its arguments into an array and applies them (twice per event, by name and '*').
   * A list is replaced, never changed, so a listener that unsubscribes during a dispatch changes
   * nothing in it.
   */
  readonly #listeners = new Map<string, readonly ((event: MeshEvent) => void)[]>();
  readonly sidecar: string;
  readonly #requests: Ring;
  readonly #decisions: Ring;
  #seq = 0;
  #dropped = 0;
  /** Events waiting for the end of this turn's I/O (emitSoon). */
  #soon: MeshEvent[] = [];
  readonly #keepRequestsAlways: boolean;
  readonly #graceMs: number;
  #requestReaders = 0;
  /** Monotonic time until which request.done are still kept with no reader taking them. */
  #keepRequestsUntil = -Infinity;

  constructor(sidecar: string, history: EventHistory = DEFAULT_HISTORY) {
    this.sidecar = sidecar;
    this.#requests = new Ring(history.requests);
    this.#decisions = new Ring(history.decisions);
    this.#keepRequestsAlways = (history.keepRequests ?? 'always') === 'always';
    this.#graceMs = history.graceMs ?? REQUESTS_GRACE_MS;
  }

  /**
   * A reader takes request.done (an /events stream with requests): with `keepRequests: 'while-read'`,
   * they are kept while one does and for the grace time after the last one leaves. Returns the
   * release, which may be called more than once.
   */
  readRequests(): () => void {
    this.#requestReaders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#requestReaders === 0) this.#keepRequestsUntil = performance.now() + this.#graceMs;
    };
  }

  /** Whether request.done emitted now is kept for readers that resume. */
  #keepsRequests(): boolean {
    return this.#keepRequestsAlways || this.#requestReaders > 0 || performance.now() < this.#keepRequestsUntil;
  }

  emit<K extends MeshEventName>(name: K, payload: Payload<K>): void {
    this.emitEvent({ type: name, seq: 0, time: 0, monotonic: 0, sidecar: '', ...payload } as MeshEvents[K]);
  }

  /**
   * Emits an event the caller built whole, its base fields left zero: the bus numbers and stamps it
   * in place with now — one object per event, not a payload and then a copy of it.
   */
  emitEvent(event: MeshEvent): void {
    this.#stamp(event, Date.now(), performance.now(), event.type !== 'request.done' || this.#keepsRequests());
  }

  /**
   * Emits an event the caller built whole (base fields zero but `monotonic`: when it happened) once
   * this turn of the event loop's I/O is done (setImmediate), with every other one deferred in the
   * same turn: request.done, one per request, goes this way rather than from each response's close
   * handler (measured 0.888× → 0.938× the requests per CPU-second of telemetry off, ten sessions
   * each, docs/benchmarks.md). Its wall-clock `time` is its `monotonic` moved by the clocks' offset,
   * read once per turn: one clock read per event, not two. Its seq is its place in the stream when
   * emitted, so an event emitted in the same turn (a breaker opening) may precede it.
   */
  emitSoon(event: MeshEvent): void {
    if (this.#soon.length === 0) setImmediate(this.#emitDeferred);
    this.#soon.push(event);
  }

  readonly #emitDeferred = (): void => {
    const events = this.#soon;
    this.#soon = [];
    const offset = Date.now() - performance.now();
    const keepRequests = this.#keepsRequests();
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      this.#stamp(event, Math.floor(event.monotonic + offset), event.monotonic, event.type !== 'request.done' || keepRequests);
    }
  };

  #stamp(event: MeshEvent, time: number, monotonic: number, kept: boolean): void {
    const stamped = event as Mutable<EventBase>;
    stamped.seq = ++this.#seq;
    stamped.time = time;
    stamped.monotonic = monotonic;
    stamped.sidecar = this.sidecar;
    this.#keep(event, kept);
  }

  /**
   * Takes in an event from another bus (a sidecar's, read by the control plane): numbered in this
   * stream, its own number kept as `sourceSeq`, its sidecar, times and payload untouched.
   */
  relay(event: MeshEvent): void {
    const relayed = { ...event, seq: ++this.#seq, sourceSeq: event.seq } as MeshEvent;
    this.#keep(relayed, relayed.type !== 'request.done' || this.#keepsRequests());
  }

  /** Hands the event to subscribers, and to its ring when `kept`. */
  #keep(event: MeshEvent, kept: boolean): void {
    if (kept) (event.type === 'request.done' ? this.#requests : this.#decisions).push(event);
    const named = this.#listeners.get(event.type);
    if (named !== undefined) for (let i = 0; i < named.length; i++) named[i]!(event);
    const any = this.#listeners.get('*');
    if (any !== undefined) for (let i = 0; i < any.length; i++) any[i]!(event);
  }

  on<K extends MeshEventName>(name: K, listener: (event: MeshEvents[K]) => void): () => void {
    return this.#subscribe(name, listener as (event: MeshEvent) => void);
  }

  /** Every event, in order. */
  onAny(listener: (event: MeshEvent) => void): () => void {
    return this.#subscribe('*', listener);
  }

  /** Adds a listener; returns its removal, which may be called more than once. */
  #subscribe(name: string, listener: (event: MeshEvent) => void): () => void {
    this.#listeners.set(name, [...(this.#listeners.get(name) ?? []), listener]);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const left = [...this.#listeners.get(name)!];
      left.splice(left.lastIndexOf(listener), 1);
      if (left.length > 0) this.#listeners.set(name, left);
      else this.#listeners.delete(name);
    };
  }

  /**
   * The kept events after `seq`, in order, and how many after it are no longer kept. Without
   * `requests`, decisions only (a reader that does not want request.done), and the count is of
   * decisions.
   */
  since(seq: number, requests = true): { events: MeshEvent[]; missed: number } {
    const decisions = this.#decisions.after(seq);
    if (!requests) return { events: decisions, missed: this.#decisions.missedAfter(seq) };
    const done = this.#requests.after(seq);
    const events: MeshEvent[] = [];
    let r = 0;
    let d = 0;
    while (r < done.length || d < decisions.length) {
      if (d === decisions.length || (r < done.length && done[r]!.seq < decisions[d]!.seq)) events.push(done[r++]!);
      else events.push(decisions[d++]!);
    }
    return { events, missed: Math.max(0, this.#seq - seq - events.length) };
  }

  get lastSeq(): number {
    return this.#seq;
  }

  /** Events a reader could not take in time (a slow /events reader), over the sidecar's life. */
  get dropped(): number {
    return this.#dropped;
  }

  countDropped(n: number): void {
    this.#dropped += n;
  }
}

/**
 * The last `capacity` events of one kind, oldest first, and the numbers (seq) of the last `capacity`
 * it let go, so that it can say how many after a given seq it no longer has.
 */
class Ring {
  readonly #slots: MeshEvent[];
  /** In each slot, the seq of the event it held before the current one. */
  readonly #evicted: Float64Array;
  /** Events ever pushed; the n-th (from 0) is in slot n % capacity while kept. */
  #pushed = 0;

  constructor(capacity: number) {
    this.#slots = new Array<MeshEvent>(capacity);
    this.#evicted = new Float64Array(capacity);
  }

  push(event: MeshEvent): void {
    const capacity = this.#slots.length;
    if (capacity === 0) return;
    const slot = this.#pushed++ % capacity;
    if (this.#pushed > capacity) this.#evicted[slot] = this.#slots[slot]!.seq;
    this.#slots[slot] = event;
  }

  /** The kept events numbered after `seq`. */
  after(seq: number): MeshEvent[] {
    const events: MeshEvent[] = [];
    for (let n = Math.max(this.#first(seq), this.#oldestKept()); n < this.#pushed; n++) events.push(this.#slots[n % this.#slots.length]!);
    return events;
  }

  /** How many events numbered after `seq` are no longer kept (at least this many, when more than `capacity` went since). */
  missedAfter(seq: number): number {
    return Math.max(0, this.#oldestKept() - this.#first(seq));
  }

  #oldestKept(): number {
    return this.#pushed - Math.min(this.#pushed, this.#slots.length);
  }

  /** The first event numbered after `seq`, by its push number, among those whose seq is still known (events arrive in seq order). */
  #first(seq: number): number {
    const capacity = this.#slots.length;
    const kept = this.#oldestKept();
    const seqOf = (n: number) => (n >= kept ? this.#slots[n % capacity]!.seq : this.#evicted[n % capacity]!);
    let low = Math.max(0, kept - capacity);
    let high = this.#pushed;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (seqOf(middle) > seq) high = middle;
      else low = middle + 1;
    }
    return low;
  }
}
