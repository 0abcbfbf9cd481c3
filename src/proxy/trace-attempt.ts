// Attempt spans: each try is a child span of the request's hop span, and its context is what goes
// upstream, so the next hop's span hangs under the try that reached it. In the stack only when
// tracing is on.
import { MeshError } from '../errors.ts';
import { endSpan, type MeshTracer } from '../telemetry/tracing.ts';
import type { Layer } from './types.ts';

export function traceAttempt(tracer: MeshTracer): Layer {
  return (next) => async (ctx) => {
    if (!ctx.span) return next(ctx);
    const span = tracer.startAttempt(ctx.span, ctx.attempt, ctx.headers);
    try {
      const response = await next(ctx);
      endSpan(span, response.status, String(response.headers['x-faultline-flags'] ?? ''), endpointOf(ctx.endpoint?.address));
      return response;
    } catch (error) {
      const mesh = error instanceof MeshError ? error : undefined;
      endSpan(span, mesh?.status ?? 0, mesh?.flag ?? '', endpointOf(ctx.endpoint?.address));
      throw error;
    }
  };
}

function endpointOf(address: string | undefined): Record<string, string> {
  return address ? { 'faultline.endpoint': address } : {};
}
