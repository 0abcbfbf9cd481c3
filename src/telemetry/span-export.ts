// The trace export worker: OpenTelemetry's tracing SDK, off the data path. A sidecar's event loop
// records a sampled span as plain data (ids, times, attributes, events) and posts the ended ones in
// batches (every telemetry.tracing.exportDelayMs, or 512 spans); here each record becomes an SDK span
// with those ids and times, and the SDK's batch processor (the same delay) and OTLP/HTTP exporter
// send it. One worker per process, whatever the number of sidecars in it (`faultline up` runs many):
// a worker's isolate is about 22 MiB of RSS.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Tracer } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { parentPort } from 'node:worker_threads';
import type { ExportMessage, ExportReply, ExporterSettings, SpanRecord } from './tracing.ts';

interface Exporter {
  readonly tracer: Tracer;
  readonly provider: BasicTracerProvider;
  /**
   * The SDK draws a span's ids from its id generator; each record's own ids, made on the data path
   * (they went upstream in traceparent before the span ended), are handed to it here.
   */
  readonly ids: { traceId: string; spanId: string };
}

/** One per sidecar of the process, each with its own resource (service, sidecar) and exporter. */
const exporters = new Map<number, Exporter>();

function open(settings: ExporterSettings): Exporter {
  const ids = { traceId: '', spanId: '' };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.service, 'faultline.sidecar': settings.sidecar }),
    // The data path sampled these already: every record is recorded and exported.
    sampler: new AlwaysOnSampler(),
    idGenerator: { generateTraceId: () => ids.traceId, generateSpanId: () => ids.spanId },
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpEndpoint, timeoutMillis: 2_000 }), { scheduledDelayMillis: settings.exportDelayMs })],
  });
  return { tracer: provider.getTracer('faultline'), provider, ids };
}

function record({ tracer, ids }: Exporter, r: SpanRecord): void {
  ids.traceId = r.traceId;
  ids.spanId = r.spanId;
  const parent =
    r.parentSpanId === undefined
      ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, {
          traceId: r.traceId,
          spanId: r.parentSpanId,
          traceFlags: TraceFlags.SAMPLED,
          isRemote: r.parentRemote,
          ...(r.traceState !== undefined && { traceState: new TraceState(r.traceState) }),
        });
  const span = tracer.startSpan(r.name, { kind: r.client ? SpanKind.CLIENT : SpanKind.SERVER, attributes: r.attributes, startTime: r.startMs }, parent);
  for (const event of r.events) span.addEvent(event.name, event.attributes, event.timeMs);
  if (r.error) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(r.endMs);
}

parentPort!.on('message', (message: ExportMessage) => {
  if (message.type === 'open') {
    exporters.set(message.id, open(message.settings));
    return;
  }
  const exporter = exporters.get(message.id);
  if (!exporter) return;
  if (message.type === 'spans') {
    for (const r of message.spans) record(exporter, r);
    return;
  }
  // Close: flush what is batched (a collector that cannot be reached loses those spans), then say so.
  exporters.delete(message.id);
  void exporter.provider
    .shutdown()
    .catch(() => undefined)
    .then(() => parentPort!.postMessage({ type: 'closed', id: message.id } satisfies ExportReply));
});
