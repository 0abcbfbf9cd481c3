// A hop's telemetry, in one place at the listener's edge: the hop opens (its span, when sampled, and
// its trace id) as the request is read, and ends once the exchange is over with the span's end and the
// request.done event, from which the request metrics and the access log count (they subscribe to it).
import type { IncomingHttpHeaders } from 'node:http';
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../http/types.ts';
import type { EventBus } from '../telemetry/events.ts';
import { propagate, traceIdOf, type MeshTracer } from '../telemetry/tracing.ts';

/**
 * Opens the hop of a new context: sets its trace id, and its span when the hop is sampled. `received`
 * are the caller's headers; the trace headers for the next hop go into the context's own.
 */
export function startHop(tracer: MeshTracer | undefined, ctx: RequestContext, received: IncomingHttpHeaders): void {
  const hop = tracer?.startHop(ctx.direction === 'outbound', received, ctx.headers);
  if (!hop) {
    ctx.traceId = traceIdOf(received);
    return;
  }
  ctx.traceId = hop.traceId;
  const span = hop.span;
  if (!span) return;
  ctx.span = span;
  // The span's name and attributes are built only for a hop that is sampled.
  span.describe(`${ctx.method} ${ctx.host}`, {
    'http.request.method': ctx.method,
    'server.address': ctx.host,
    'url.path': ctx.pathname,
    'faultline.sidecar': ctx.sidecar,
    'faultline.direction': ctx.direction,
  });
  // Inbound, the app's own calls continue from this hop; outbound, each attempt span takes over.
  if (ctx.direction === 'inbound') propagate(span, ctx.headers);
}

/** No flags, no faults: one frozen empty list for every event that has none (events are kept in a ring; less to keep). */
const NONE: string[] = Object.freeze([]) as unknown as string[];

/** Ends the hop with what the caller got, once the exchange is over: the span, then the request.done event. */
export function endHop(events: EventBus, ctx: RequestContext, status: number, flags: string, responseBytes = 0): void {
  if (ctx.span) {
    ctx.span.end(status, flags, {
      'faultline.attempts': ctx.attempt,
      // OpenTelemetry's name for the gRPC status; the span is an error when it is not OK.
      ...(ctx.grpc && ctx.grpcStatus !== null && { 'rpc.grpc.status_code': ctx.grpcStatus }),
      ...(ctx.route && { 'faultline.route': ctx.route.name }),
      ...(ctx.destination && { 'faultline.destination': ctx.destination.service }),
      ...(ctx.endpoint && { 'faultline.endpoint': ctx.endpoint.address }),
      ...(ctx.faults && { 'faultline.faults': ctx.faults.join(',') }),
    });
  }
  const monotonic = performance.now();
  // Built now, as the exchange closed; numbered, stamped and handed to subscribers at the end of this turn's I/O.
  events.emitSoon({
    type: 'request.done',
    seq: 0,
    time: 0,
    monotonic,
    sidecar: '',
    requestId: ctx.id,
    traceId: ctx.traceId,
    direction: ctx.direction,
    source: ctx.source,
    service: ctx.destination?.service ?? null,
    route: ctx.route?.name ?? null,
    endpoint: ctx.endpoint?.address ?? null,
    method: ctx.method,
    protocol: ctx.protocol,
    authority: ctx.host,
    path: ctx.pathname,
    status,
    grpcStatus: ctx.grpc ? ctx.grpcStatus : null,
    flags: flags ? flags.split(',') : NONE,
    attempts: ctx.attempt,
    durationMs: monotonic - ctx.startedAt,
    requestBytes: ctx.body.bytes,
    responseBytes,
    faults: ctx.faults ?? NONE,
  });
}
