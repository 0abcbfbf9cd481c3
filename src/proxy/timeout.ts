// Route timeout: the whole request, response body included. Before the response starts, expiry is a
// 504 with flag UT; after, the response is cut. Either way the upstream request is cancelled, which
// frees its socket.
import { ResponseFlag, upstreamTimeout } from '../errors.ts';
import { onResponseDone, type Layer } from './types.ts';

export const timeout: Layer = (next) => async (ctx) => {
  const ms = ctx.route?.timeoutMs;
  if (ms === undefined) return next(ctx);
  const expired = upstreamTimeout(ms);
  const cancellation = ctx.cancellation.child();
  const handle = setTimeout(() => {
    ctx.flags.add(ResponseFlag.UpstreamRequestTimeout);
    cancellation.cancel(expired);
  }, ms);
  const done = () => {
    clearTimeout(handle);
    cancellation.release();
  };
  ctx.cancellation = cancellation;
  try {
    const response = await next(ctx);
    onResponseDone(response, done);
    return response;
  } catch (error) {
    done();
    throw cancellation.reason === expired ? expired : error;
  }
};
