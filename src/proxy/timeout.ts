// Timeouts. The route timeout covers the whole request — every attempt and the response body: before
// the response starts, expiry is a 504 with flag UT; after, the response is cut. The per-try timeout
// covers one attempt until its response headers, so that an attempt that hangs can be retried. Either
// way the upstream exchange is cancelled, which frees its socket. A gRPC caller's deadline
// (grpc-timeout) bounds the request too: the smaller of it and the route timeout is the request's
// deadline, which the forwarder passes on as what is left of it (per try: the per-try deadline if
// nearer); its expiry is the same UT timeout, which a gRPC caller gets as DEADLINE_EXCEEDED (rescue.ts).
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import { parseGrpcTimeout } from '../http/grpc.ts';
import { ResponseFlag, perTryTimeout as perTryExpired, upstreamTimeout, type MeshError } from '../errors.ts';
import type { Cancellation } from '../http/cancellation.ts';
import { Deadlines, type Deadline } from '../http/deadlines.ts';
import { onResponseDone, type Handler, type Layer, type ProxyResponse, type RequestContext } from '../http/types.ts';

export const timeout: Layer = (next) => (ctx) => {
  const route = ctx.route?.timeoutMs;
  const caller = ctx.grpc ? parseGrpcTimeout(ctx.headers['grpc-timeout']) : undefined;
  const ms = caller === undefined ? route : route === undefined ? caller : Math.min(route, caller);
  return ms === undefined ? next(ctx) : withDeadline(next, ctx, ms, upstreamTimeout, true);
};

export const perTryTimeout: Layer = (next) => (ctx) => {
  const ms = ctx.route?.retries?.perTryTimeoutMs;
  return ms === undefined ? next(ctx) : withDeadline(next, ctx, ms, perTryExpired, false);
};

/** Every request's route and per-try deadlines, with one timer (http/deadlines.ts). */
const deadlines = new Deadlines();

/** A request's deadline in the set: when it passes, the request (or its try) is cancelled with a timeout. */
class RequestDeadline implements Deadline {
  readonly at: number;
  readonly #ctx: RequestContext;
  readonly #ms: number;
  readonly #expiry: (ms: number) => MeshError;
  readonly cancellation: Cancellation;
  /** The error it cancelled with, once it passed. */
  expired: MeshError | undefined = undefined;

  constructor(at: number, ctx: RequestContext, ms: number, expiry: (ms: number) => MeshError, cancellation: Cancellation) {
    this.at = at;
    this.#ctx = ctx;
    this.#ms = ms;
    this.#expiry = expiry;
    this.cancellation = cancellation;
  }

  expire(): void {
    this.#ctx.flags.add(ResponseFlag.UpstreamRequestTimeout);
    this.cancellation.cancel((this.expired = this.#expiry(this.#ms)));
  }

  /** Over in time (or cut short otherwise): no longer timed, and no longer following the request's cancellation. */
  end(): void {
    deadlines.delete(this);
    this.cancellation.release();
  }
}

/** `expiry` makes the error only when the deadline passes: an Error's stack trace is too dear to build per request. */
async function withDeadline(
  next: Handler,
  ctx: RequestContext,
  ms: number,
  expiry: (ms: number) => MeshError,
  coversBody: boolean,
): Promise<ProxyResponse> {
  const parent = ctx.cancellation;
  const outer = ctx.deadline;
  const at = performance.now() + ms;
  const deadline = new RequestDeadline(at, ctx, ms, expiry, parent.child());
  deadlines.add(deadline);
  ctx.cancellation = deadline.cancellation;
  if (outer === undefined || at < outer) ctx.deadline = at;
  try {
    const response = await next(ctx);
    if (!coversBody) deadlines.delete(deadline);
    onResponseDone(response, () => deadline.end());
    return response;
  } catch (error) {
    deadline.end();
    throw deadline.expired !== undefined && deadline.cancellation.reason === deadline.expired ? deadline.expired : error;
  } finally {
    // The next attempt (or layer) starts again from the cancellation this one narrowed.
    ctx.cancellation = parent;
    ctx.deadline = outer;
  }
}
