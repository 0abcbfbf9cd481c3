// Traces (OpenTelemetry): a span per hop — CLIENT on the outbound side, SERVER on the inbound side —
// and a child span per attempt, whose context goes upstream, so retries show as children of their
// request. W3C traceparent and B3 (single and multi header) are both read, and both written to the
// app, so apps that forward either keep one trace; upstream, W3C (and B3 where the request has it).
// Exported over OTLP/HTTP when an endpoint is configured; without one no span is made at all and
// headers pass through untouched.
//
// The event loop only decides, propagates and records: a sampled hop is a SampledSpan, plain data
// whose context is written into the headers with OpenTelemetry's own propagators. Ended spans are
// posted in batches (every telemetry.tracing.exportDelayMs, or 512 at once) to a worker thread
// (span-export.ts) in which OpenTelemetry's tracing SDK (sdk-trace-base, what @opentelemetry/sdk-node
// builds on, without its every-exporter entry point) makes them spans and exports them.
import { ROOT_CONTEXT, TraceFlags, trace, type SpanContext, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { createLogger } from './log.ts';
import { succeeded } from '../measures.ts';

/** A hop's trace: its span when sampled, and the trace id it belongs to either way. */
export interface Hop {
  readonly span: SampledSpan | undefined;
  readonly traceId: string | null;
}

export interface TracingSettings {
  readonly otlpEndpoint: string;
  readonly sampleRatio: number;
  /** How long ended spans wait to be batched: on the event loop before they are posted, then in the worker before they are sent. */
  readonly exportDelayMs: number;
}

/** What the export worker is started with. */
export interface ExporterSettings {
  readonly service: string;
  readonly sidecar: string;
  readonly otlpEndpoint: string;
  readonly exportDelayMs: number;
}

/** One ended span, as the export worker receives it. Times are milliseconds since the Unix epoch. */
export interface SpanRecord {
  readonly name: string;
  /** CLIENT (outbound hops, attempts) or SERVER (inbound hops). */
  readonly client: boolean;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  /** Whether the parent is the caller's (from its headers) rather than a span of this sidecar. */
  readonly parentRemote: boolean;
  /** The W3C tracestate the trace carries, serialized. */
  readonly traceState: string | undefined;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Record<string, string | number>;
  /** What happened during the span (a fault applied), in order. */
  readonly events: SpanEventRecord[];
  /** Ended with a 5xx or no response: the span's status is ERROR. */
  readonly error: boolean;
}

export interface SpanEventRecord {
  readonly name: string;
  readonly timeMs: number;
  readonly attributes: Record<string, string | number>;
}

/** From a tracer to the export worker: its exporter opens, gets ended spans, closes. */
export type ExportMessage =
  | { readonly type: 'open'; readonly id: number; readonly settings: ExporterSettings }
  | { readonly type: 'spans'; readonly id: number; readonly spans: SpanRecord[] }
  | { readonly type: 'close'; readonly id: number };

/** From the export worker: a tracer's exporter has flushed and closed. */
export interface ExportReply {
  readonly type: 'closed';
  readonly id: number;
}

const getter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};
const setter: TextMapSetter<IncomingHttpHeaders> = {
  set: (carrier, key, value) => {
    carrier[key.toLowerCase()] = value;
  },
};

const w3c = new W3CTraceContextPropagator();
const b3Single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });
const b3Multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
/** Reads any of the three formats (extract); writes all three (inject) where the app is next. */
const propagator = new CompositePropagator({ propagators: [b3Single, b3Multi, w3c] });

/** Ended spans waiting for the next post: at most this many (a stuck worker costs spans, not memory). */
const QUEUE_LIMIT = 4_096;
/** Posted as soon as this many are waiting, else when the export delay is up. */
const POST_BATCH = 512;
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './span-export.ts' : './span-export.js', import.meta.url);

/**
 * The process's export worker, started with the first tracer to post spans and stopped after its
 * last closes: the sidecars of one process share it.
 */
class ExportWorker {
  static #shared: ExportWorker | undefined;
  static #ids = 0;

  readonly #worker = new Worker(WORKER);
  readonly #closing = new Map<number, () => void>();
  #users = 0;
  #failed = false;

  private constructor() {
    this.#worker.unref();
    this.#worker.on('message', (reply: ExportReply) => this.#closing.get(reply.id)?.());
    this.#worker.on('error', (error) => {
      this.#failed = true;
      for (const done of this.#closing.values()) done();
      createLogger('tracing').error({ err: error }, 'the trace export worker failed: spans are no longer exported');
    });
  }

  /** Opens an exporter for one tracer; its id goes with everything it posts. */
  static open(settings: ExporterSettings): { worker: ExportWorker; id: number } {
    // A worker that failed keeps its tracers (they export nothing more); new ones get a new worker.
    if (ExportWorker.#shared === undefined || ExportWorker.#shared.#failed) ExportWorker.#shared = new ExportWorker();
    const worker = ExportWorker.#shared;
    const id = ++ExportWorker.#ids;
    worker.#users++;
    worker.post({ type: 'open', id, settings });
    return { worker, id };
  }

  post(message: ExportMessage): void {
    if (!this.#failed) this.#worker.postMessage(message);
  }

  /** Flushes and closes exporter `id`, waiting at most `ms`; the last one out stops the worker. */
  async close(id: number, ms: number): Promise<void> {
    if (!this.#failed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#closing.set(id, resolve);
        timer = setTimeout(resolve, ms);
        this.post({ type: 'close', id });
      });
      clearTimeout(timer);
      this.#closing.delete(id);
    }
    if (--this.#users > 0) return;
    if (ExportWorker.#shared === this) ExportWorker.#shared = undefined;
    await this.#worker.terminate();
  }
}

export class MeshTracer {
  readonly #ratio: number;
  readonly #delayMs: number;
  readonly #settings: ExporterSettings;
  /**
   * Opened with the first post of ended spans, not before: the export worker (its isolate and the
   * SDK, ~20 MiB of RSS) is not started by a sidecar that has not sampled a span yet.
   */
  #exporter: { worker: ExportWorker; id: number } | undefined;
  #queue: SpanRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(service: string, sidecar: string, settings: TracingSettings) {
    this.#ratio = settings.sampleRatio;
    this.#delayMs = settings.exportDelayMs;
    this.#settings = { service, sidecar, otlpEndpoint: settings.otlpEndpoint, exportDelayMs: settings.exportDelayMs };
  }

  /**
   * The span of one hop, child of whatever context the caller sent — when the hop is sampled. Most
   * are not (a ratio of 1 % is usual), and those make no span: a caller's unsampled context passes
   * through untouched, and a request that came with none gets a fresh W3C traceparent with the
   * sampled flag off, so every hop still shares one trace id (which request.done carries). A
   * sampled hop's span is named and described by the caller (SampledSpan.describe), so that an
   * unsampled one costs no name or attributes.
   */
  startHop(outbound: boolean, headers: IncomingHttpHeaders, forward: IncomingHttpHeaders): Hop {
    const sampled = sampledFlag(headers);
    if (sampled === undefined ? Math.random() >= this.#ratio : !sampled) {
      if (sampled === undefined) {
        const ids = randomIds();
        const traceId = ids.slice(0, 32);
        forward.traceparent = `00-${traceId}-${ids.slice(32)}-00`;
        return { span: undefined, traceId };
      }
      return { span: undefined, traceId: traceIdOf(headers) };
    }
    const parent = sampled === undefined ? undefined : trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, getter));
    const ids = randomIds();
    const context: SpanContext = { traceId: parent?.traceId ?? ids.slice(0, 32), spanId: ids.slice(32), traceFlags: TraceFlags.SAMPLED, ...(parent?.traceState && { traceState: parent.traceState }) };
    const span = new SampledSpan(this, '', outbound, context, parent, {});
    return { span, traceId: context.traceId };
  }

  /**
   * A child span for one attempt of a sampled hop; its context replaces the trace headers going
   * upstream (propagateUpstream).
   */
  startAttempt(hop: SampledSpan, attempt: number, headers: IncomingHttpHeaders): SampledSpan {
    const span = new SampledSpan(this, `attempt ${attempt}`, true, { ...hop.context, spanId: randomIds().slice(32) }, hop.context, { 'faultline.attempt': attempt });
    propagateUpstream(span, headers);
    return span;
  }

  /** Queues an ended span for the export worker. */
  export(record: SpanRecord): void {
    if (this.#closed || this.#queue.length >= QUEUE_LIMIT) return;
    this.#queue.push(record);
    if (this.#queue.length >= POST_BATCH) this.#post();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#post(), this.#delayMs);
      this.#timer.unref();
    }
  }

  #post(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length === 0) return;
    this.#exporter ??= ExportWorker.open(this.#settings);
    this.#exporter.worker.post({ type: 'spans', id: this.#exporter.id, spans: this.#queue });
    this.#queue = [];
  }

  /** Flushes what is recorded; a collector that cannot be reached loses those spans, never the close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#post();
    this.#closed = true;
    // A tracer that never posted a span has no exporter to flush. The exporter gives up on a send
    // after 2 s; past 5, the close goes on without it.
    if (this.#exporter) await this.#exporter.worker.close(this.#exporter.id, 5_000);
  }
}

/**
 * A sampled span, on the data path: its context (which goes upstream) and what the export worker
 * needs to make an OpenTelemetry span of it once it ends.
 */
export class SampledSpan {
  readonly context: SpanContext;
  readonly #tracer: MeshTracer;
  #name: string;
  readonly #client: boolean;
  readonly #parent: SpanContext | undefined;
  #attributes: Record<string, string | number>;
  readonly #startMs = epochMs();
  #events: SpanEventRecord[] | undefined;
  #ended = false;

  constructor(tracer: MeshTracer, name: string, client: boolean, context: SpanContext, parent: SpanContext | undefined, attributes: Record<string, string | number>) {
    this.#tracer = tracer;
    this.#name = name;
    this.#client = client;
    this.context = context;
    this.#parent = parent;
    this.#attributes = attributes;
  }

  /** Names the span and sets its first attributes. */
  describe(name: string, attributes: Record<string, string | number>): void {
    this.#name = name;
    this.#attributes = attributes;
  }

  /** Something that happened during the span, now. */
  addEvent(name: string, attributes: Record<string, string | number>): void {
    (this.#events ??= []).push({ name, timeMs: epochMs(), attributes });
  }

  /** Ends the span with the response it led to; a span ends once, later calls do nothing. */
  end(status: number, flags: string, extra: Record<string, string | number> = {}): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#tracer.export({
      name: this.#name,
      client: this.#client,
      traceId: this.context.traceId,
      spanId: this.context.spanId,
      parentSpanId: this.#parent?.spanId,
      parentRemote: this.#parent?.isRemote === true,
      traceState: this.context.traceState?.serialize(),
      startMs: this.#startMs,
      endMs: epochMs(),
      attributes: { ...this.#attributes, 'http.response.status_code': status, 'faultline.response_flags': flags || '-', ...extra },
      events: this.#events ?? [],
      error: !succeeded(status, typeof extra['rpc.grpc.status_code'] === 'number' ? extra['rpc.grpc.status_code'] : null),
    });
  }
}

/**
 * Writes the span's context into the headers going to the app (W3C and both B3 forms, replacing
 * what was there): an app may forward either format.
 */
export function propagate(span: SampledSpan, headers: IncomingHttpHeaders): void {
  propagator.inject(trace.setSpanContext(ROOT_CONTEXT, span.context), headers, setter);
}

/**
 * Writes the span's context into the headers going upstream: W3C, which every sidecar reads (as a
 * new trace's unsampled hops get it), and B3 in the forms the request carries, replaced, so that an
 * upstream outside the mesh that its callers reach with B3 still gets B3 — as Envoy's OpenTelemetry
 * tracer writes W3C alone.
 */
function propagateUpstream(span: SampledSpan, headers: IncomingHttpHeaders): void {
  const context = trace.setSpanContext(ROOT_CONTEXT, span.context);
  w3c.inject(context, headers, setter);
  if (headers.b3 !== undefined) b3Single.inject(context, headers, setter);
  if (headers['x-b3-traceid'] !== undefined) b3Multi.inject(context, headers, setter);
}

/** Now, in milliseconds since the Unix epoch, to the microsecond (Date.now() has milliseconds only). */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The trace id the request carries (traceparent or B3), without making any span. */
export function traceIdOf(headers: IncomingHttpHeaders): string | null {
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string' && traceparent.length >= 55) return traceparent.slice(3, 35);
  const b3 = headers.b3;
  if (typeof b3 === 'string' && b3.length >= 16) return b3.slice(0, b3.indexOf('-') === -1 ? undefined : b3.indexOf('-'));
  const multi = headers['x-b3-traceid'];
  return typeof multi === 'string' ? multi : null;
}

/**
 * The sampling decision the caller's trace context carries: true or false, or undefined when it
 * carries no context (a root). B3 without a decision counts as not sampled, as OpenTelemetry's B3
 * propagator reads it; B3 debug (`d`) as sampled.
 */
function sampledFlag(headers: IncomingHttpHeaders): boolean | undefined {
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string' && traceparent.length >= 55) return (parseInt(traceparent.slice(53, 55), 16) & 1) === 1;
  const b3 = headers.b3;
  if (typeof b3 === 'string' && b3.length > 0) {
    const parts = b3.split('-');
    if (parts.length === 1) return b3 === '1' || b3 === 'd';
    return parts[2] === '1' || parts[2] === 'd';
  }
  if (headers['x-b3-traceid'] !== undefined) return headers['x-b3-sampled'] === '1' || headers['x-b3-flags'] === '1';
  return undefined;
}

// Ids, as 48 hex digits (a trace id's 32 and a span id's 16), cut from random bytes turned into hex
// 170 requests' worth at a time: one conversion per refill, a substring per request.
const pool = Buffer.alloc(24 * 170);
let hex = '';
let used = hex.length;
function randomIds(): string {
  if (used === hex.length) {
    hex = randomFillSync(pool).toString('hex');
    used = 0;
  }
  used += 48;
  return hex.slice(used - 48, used);
}
