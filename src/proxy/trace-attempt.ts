// Attempt spans: each try is a child span of the request's hop span, and its context is what goes
// upstream, so the next hop's span hangs under the try that reached it. In the stack only when
// tracing is on.
import { MeshError } from '../errors.ts';
import type { MeshTracer, SampledSpan } from '../telemetry/tracing.ts';
import type { Layer, RequestContext } from '../http/types.ts';

export function traceAttempt(tracer: MeshTracer): Layer {
  return (next) => {
    const traced = async (ctx: RequestContext, span: SampledSpan) => {
      const attempt = tracer.startAttempt(span, ctx.attempt, ctx.headers);
      try {
        const response = await next(ctx);
        attempt.end(response.status, String(response.headers['x-faultline-flags'] ?? ''), endpointOf(ctx.endpoint?.address));
        return response;
      } catch (error) {
        const mesh = error instanceof MeshError ? error : undefined;
        attempt.end(mesh?.status ?? 0, mesh?.flag ?? '', endpointOf(ctx.endpoint?.address));
        throw error;
      }
    };
    // Most hops are not sampled: those go straight through, with no promise of this layer's own.
    return (ctx) => (ctx.span ? traced(ctx, ctx.span) : next(ctx));
  };
}

function endpointOf(address: string | undefined): Record<string, string> {
  return address ? { 'faultline.endpoint': address } : {};
}
