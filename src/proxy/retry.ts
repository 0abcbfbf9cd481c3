// Retry layer: runs the attempt part of the stack (per-try timeout, balance, outlier, forward) until an
// attempt succeeds or a retry is not allowed. A retry needs: a retriable outcome (retryOn; a gRPC
// status only when it came in the response head — trailers-only — as Envoy's rule: a status in real
// trailers follows messages the caller may have been given), an idempotent method (or the route's
// leave; a gRPC call, always POST, may be retried as Envoy and Linkerd retry gRPC: its retryOn names
// the statuses that say the call may be sent again), attempts left (else URX), a replayable body (else RBL),
// budget (else UBX) and room under the destination breaker's maxRetries (else UO). Each retry waits a full-jitter backoff and goes to another endpoint when one exists.
import type { RetryOnCondition } from '../config/schema.ts';
import type { RetryPolicySpec } from '../config/snapshot.ts';
import { ErrorCode, MeshError, ResponseFlag } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import { fullJitter, sleep } from './backoff.ts';
import { GRPC_RETRY_ON, grpcStatusOf, isGrpcContentType, type GrpcRetryOn } from '../http/grpc.ts';
import { Header } from '../http/headers.ts';
import type { Breakers } from './breaker/registry.ts';
import type { Clusters } from './endpoints.ts';
import type { RetryBudgets } from './retry-budget.ts';
import type { Layer, ProxyResponse, RequestContext } from '../http/types.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Whether the route's retry may retry a request with this method at all. */
export function mayRetry(policy: RetryPolicySpec, method: string): boolean {
  return policy.retryNonIdempotent || IDEMPOTENT.has(method);
}

/** A try's outcome as the retry layer judges it (and analysis, from a recorded hop). */
export type Outcome = { response: ProxyResponse } | { error: unknown };

export function retry(budgets: RetryBudgets, breakers: Breakers, clusters: Clusters, events: EventBus, random: () => number = Math.random): Layer {
  return (next) => {
    const withRetries = async (ctx: RequestContext, policy: RetryPolicySpec): Promise<ProxyResponse> => {
      const budget = budgets.for(ctx.route!.name, policy.budget);
      budget.recordRequest();
      const allowed = ctx.grpc || mayRetry(policy, ctx.method);
      // A request without a body (most) is replayable as it is: no promise to wait for. A gRPC call's body
      // is kept as it streams, not waited for (a bidirectional stream's next message may wait on an answer).
      if (ctx.grpc && allowed && policy.attempts > 0) ctx.body.recordForReplay(policy.bufferLimit);
      const replayable = ctx.grpc || !allowed || policy.attempts === 0 || ctx.body.replayable ? ctx.body.replayable : await ctx.body.bufferForReplay(policy.bufferLimit);
      const circuit = breakers.for(clusters.get(ctx.destination!.service)!.spec, ctx.destination!);
      let retrying = false;
      for (;;) {
        // Inline rather than a helper: one promise less per attempt. No Outcome object for a try that
        // is not retried (nearly all): the response or the error as they are.
        let response: ProxyResponse | undefined;
        let failure: unknown;
        try {
          response = await next(ctx);
        } catch (error) {
          failure = error;
        }
        if (retrying) circuit?.retryDone();
        retrying = false;
        const reason = response ? retriableResponse(policy, response) : retriableError(policy, failure);
        if (!reason || !allowed || ctx.cancellation.cancelled) return settle(response, failure);
        // The endpoints tried, for the next try to avoid: kept only once a try is to be retried.
        if (ctx.endpoint) (ctx.tried ??= new Set()).add(ctx.endpoint);
        if (ctx.attempt > policy.attempts) return settle(response, failure, ctx, ResponseFlag.RetryLimitExceeded);
        if (!(ctx.grpc ? ctx.body.canReplay : replayable)) return settle(response, failure, ctx, ResponseFlag.RetryBodyTooLarge);
        if (!budget.tryRetry()) return settle(response, failure, ctx, ResponseFlag.RetryBudgetExhausted);
        if (circuit && !circuit.tryRetry()) return settle(response, failure, ctx, ResponseFlag.UpstreamOverflow);
        retrying = true;
        response?.body?.destroy();
        const backoffMs = fullJitter(policy.backoff, ctx.attempt, random);
        events.emit('retry.attempt', {
          requestId: ctx.id,
          traceId: ctx.traceId,
          route: ctx.route!.name,
          service: ctx.destination!.service,
          attempt: ctx.attempt + 1,
          reason,
          failedEndpoint: ctx.endpoint?.address ?? null,
          backoffMs,
        });
        try {
          await sleep(backoffMs, ctx.cancellation);
        } catch (error) {
          circuit?.retryDone();
          throw error;
        }
        ctx.attempt++;
        ctx.headers[Header.attempt] = String(ctx.attempt);
        ctx.endpoint = undefined;
      }
    };
    return (ctx) => {
      const policy = ctx.route?.retries;
      ctx.attempt = 1;
      ctx.headers[Header.attempt] = '1';
      // A route without retries goes straight through: no promise of this layer's own.
      return !policy || ctx.upgrade ? next(ctx) : withRetries(ctx, policy);
    };
  };
}

/** The try's response, or its error thrown; with the flag that says why it was not retried, if any. */
function settle(response: ProxyResponse | undefined, failure: unknown, ctx?: RequestContext, flag?: ResponseFlag): ProxyResponse {
  if (ctx && flag) ctx.flags.add(flag);
  if (response) return response;
  throw failure;
}

/** The retryOn condition an outcome meets, if any. */
export function retriable(policy: RetryPolicySpec, outcome: Outcome): RetryOnCondition | undefined {
  return 'response' in outcome ? retriableResponse(policy, outcome.response) : retriableError(policy, outcome.error);
}

function retriableResponse(policy: RetryPolicySpec, response: ProxyResponse): RetryOnCondition | undefined {
  const on = policy.retryOn;
  const status = response.status;
  if (on.has('5xx') && status >= 500) return '5xx';
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return 'gateway-error';
  if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return 'retriable-status-codes';
  return response.body === null ? grpcRetriable(on, response) : undefined;
}

function retriableError(policy: RetryPolicySpec, error: unknown): RetryOnCondition | undefined {
  const on = policy.retryOn;
  if (!(error instanceof MeshError)) return undefined;
  const local = error.flag === ResponseFlag.UpstreamConnectFailure ? 'connect-failure'
    : error.code === ErrorCode.UpstreamRefusedStream ? 'refused-stream'
    : error.flag === ResponseFlag.UpstreamConnectionTermination ? 'reset'
    : error.code === ErrorCode.UpstreamPerTryTimeout ? 'per-try-timeout'
    : undefined;
  if (!local) return undefined;
  // A refused stream is a reset the upstream promises it did not act on: `reset` covers it too.
  if (local === 'refused-stream' && !on.has(local) && on.has('reset')) return 'reset';
  if (local !== 'per-try-timeout' && on.has(local)) return local;
  if (on.has('5xx')) return '5xx';
  if (on.has('gateway-error')) return 'gateway-error';
  return undefined;
}

const GRPC_TOKENS = Object.entries(GRPC_RETRY_ON) as [GrpcRetryOn, number][];

/** The gRPC retryOn token a trailers-only answer's status meets, if any. */
function grpcRetriable(on: ReadonlySet<RetryOnCondition>, response: ProxyResponse): RetryOnCondition | undefined {
  if (!isGrpcContentType(response.headers['content-type'] as string | undefined)) return undefined;
  const code = grpcStatusOf(response.headers);
  for (const [token, status] of GRPC_TOKENS) if (status === code && on.has(token)) return token;
  return undefined;
}
