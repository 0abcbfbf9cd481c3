// Timeouts. The route timeout covers the whole request — every attempt and the response body: before
// the response starts, expiry is a 504 with flag UT; after, the response is cut. The per-try timeout
// covers one attempt until its response headers, so that an attempt that hangs can be retried. Either
// way the upstream exchange is cancelled, which frees its socket.
import { ResponseFlag, perTryTimeout as perTryExpired, upstreamTimeout, type MeshError } from '../errors.ts';
import { onResponseDone, type Handler, type Layer, type ProxyResponse, type RequestContext } from '../http/types.ts';

export const timeout: Layer = (next) => (ctx) => {
  const ms = ctx.route?.timeoutMs;
  return ms === undefined ? next(ctx) : withDeadline(next, ctx, ms, upstreamTimeout, true);
};

export const perTryTimeout: Layer = (next) => (ctx) => {
  const ms = ctx.route?.retries?.perTryTimeoutMs;
  return ms === undefined ? next(ctx) : withDeadline(next, ctx, ms, perTryExpired, false);
};

/** `expiry` makes the error only when the deadline passes: an Error's stack trace is too dear to build per request. */
async function withDeadline(
  next: Handler,
  ctx: RequestContext,
  ms: number,
  expiry: (ms: number) => MeshError,
  coversBody: boolean,
): Promise<ProxyResponse> {
  const parent = ctx.cancellation;
  const cancellation = parent.child();
  let expired: MeshError | undefined;
  const handle = setTimeout(() => {
    ctx.flags.add(ResponseFlag.UpstreamRequestTimeout);
    cancellation.cancel((expired = expiry(ms)));
  }, ms);
  ctx.cancellation = cancellation;
  try {
    const response = await next(ctx);
    if (!coversBody) clearTimeout(handle);
    onResponseDone(response, () => {
      clearTimeout(handle);
      cancellation.release();
    });
    return response;
  } catch (error) {
    clearTimeout(handle);
    cancellation.release();
    throw expired !== undefined && cancellation.reason === expired ? expired : error;
  } finally {
    // The next attempt (or layer) starts again from the cancellation this one narrowed.
    ctx.cancellation = parent;
  }
}
