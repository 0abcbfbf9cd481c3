// Circuit-breaker layer: each attempt asks its destination's breaker to be admitted (or gets a fast
// 503 UO), tells it whether the attempt failed once the response starts, and frees its slot when the
// response is over. Failures are 5xx responses and the mesh's own upstream failures (connect
// failure, reset, timeout) — a gRPC error in the response head too, as Envoy maps it (judgedStatus); a caller that left says nothing about the upstream.
import { ErrorCode, MeshError, ResponseFlag } from '../errors.ts';
import { judgedStatus } from '../http/grpc.ts';
import type { AttemptVerdict, CircuitBreaker } from './breaker/circuit-breaker.ts';
import type { Breakers } from './breaker/registry.ts';
import type { Clusters } from './endpoints.ts';
import { onResponseDone, type Layer, type ProxyResponse, type RequestContext } from '../http/types.ts';

const UPSTREAM_FAILURES = new Set<string>([
  ResponseFlag.UpstreamConnectFailure,
  ResponseFlag.UpstreamConnectionTermination,
  ResponseFlag.UpstreamRequestTimeout,
]);

export function breaker(breakers: Breakers, clusters: Clusters): Layer {
  return (next) => {
    const guarded = async (ctx: RequestContext, circuit: CircuitBreaker): Promise<ProxyResponse> => {
      const ticket = circuit.tryAdmit() ?? (await circuit.admit(ctx.cancellation));
      try {
        const response = await next(ctx);
        circuit.judge(ticket, judgedStatus(response) >= 500 ? 'failure' : 'success');
        onResponseDone(response, () => circuit.release());
        return response;
      } catch (error) {
        circuit.judge(ticket, verdictOf(error));
        circuit.release();
        throw error;
      }
    };
    // A destination without a breaker goes straight through: no promise of this layer's own.
    return (ctx) => {
      const destination = ctx.destination!;
      const circuit = breakers.for(clusters.get(destination.service)!.spec, destination);
      return circuit ? guarded(ctx, circuit) : next(ctx);
    };
  };
}

function verdictOf(error: unknown): AttemptVerdict {
  if (!(error instanceof MeshError)) return 'failure';
  if (error.code === ErrorCode.DownstreamReset) return 'neutral';
  return UPSTREAM_FAILURES.has(error.flag) ? 'failure' : 'neutral';
}
