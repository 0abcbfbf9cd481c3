// Traces (OpenTelemetry): a span per hop — CLIENT on the outbound side, SERVER on the inbound side —
// and a child span per attempt, whose context goes upstream, so retries show as children of their
// request. W3C traceparent and B3 (single and multi header) are both read and both written, so apps
// that forward either keep one trace. Exported over OTLP/HTTP when an endpoint is configured; without
// one no span is made at all and headers pass through untouched.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { tracing } from '@opentelemetry/sdk-node';
import type { IncomingHttpHeaders } from 'node:http';

export interface TracingSettings {
  readonly otlpEndpoint: string;
  readonly sampleRatio: number;
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

const propagator = new CompositePropagator({
  propagators: [
    new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
    new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
    new W3CTraceContextPropagator(),
  ],
});

export class MeshTracer {
  readonly #provider: tracing.BasicTracerProvider;
  readonly #tracer;

  constructor(service: string, sidecar: string, settings: TracingSettings) {
    this.#provider = new tracing.BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service, 'faultline.sidecar': sidecar }),
      sampler: new tracing.ParentBasedSampler({ root: new tracing.TraceIdRatioBasedSampler(settings.sampleRatio) }),
      spanProcessors: [new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpEndpoint, timeoutMillis: 2_000 }), { scheduledDelayMillis: 200 })],
    });
    this.#tracer = this.#provider.getTracer('faultline');
  }

  /** The span of one hop, child of whatever context the caller sent. */
  startHop(name: string, outbound: boolean, headers: IncomingHttpHeaders, attributes: Record<string, string>): Span {
    const carries = headers.traceparent !== undefined || headers.b3 !== undefined || headers['x-b3-traceid'] !== undefined;
    const parent = carries ? propagator.extract(ROOT_CONTEXT, headers, getter) : ROOT_CONTEXT;
    return this.#tracer.startSpan(name, { kind: outbound ? SpanKind.CLIENT : SpanKind.SERVER, attributes }, parent);
  }

  /**
   * A child span for one attempt; its context replaces the trace headers going upstream. When the
   * hop is not sampled no attempt span is made (nothing would record it): the hop's context goes
   * upstream, carrying the trace id and the decision not to sample.
   */
  startAttempt(hop: Span, attempt: number, headers: IncomingHttpHeaders): Span | undefined {
    if (!hop.isRecording()) {
      propagate(hop, headers);
      return undefined;
    }
    const parent: Context = trace.setSpan(ROOT_CONTEXT, hop);
    const span = this.#tracer.startSpan(`attempt ${attempt}`, { kind: SpanKind.CLIENT, attributes: { 'faultline.attempt': attempt } }, parent);
    propagate(span, headers);
    return span;
  }

  async close(): Promise<void> {
    await this.#provider.shutdown();
  }
}

/** Writes the span's context into the headers (W3C and both B3 forms), replacing what was there. */
export function propagate(span: Span, headers: IncomingHttpHeaders): void {
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, setter);
}

/** Ends a span with the response it led to. */
export function endSpan(span: Span, status: number, flags: string, extra: Record<string, string | number> = {}): void {
  if (!span.isRecording()) return;
  span.setAttributes({ 'http.response.status_code': status, 'faultline.response_flags': flags || '-', ...extra });
  if (status === 0 || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
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
