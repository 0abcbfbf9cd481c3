// Route timeout: the whole request, response body included. Before the response starts, expiry is a
// 504 with flag UT; after, the response is cut. Either way the upstream request is cancelled, which
// frees its socket.
import { ResponseFlag, upstreamTimeout } from '../errors.ts';
import { onResponseDone, type Layer } from './types.ts';

export const timeout: Layer = (next) => async (ctx) => {
  const ms = ctx.route?.timeoutMs;
  if (ms === undefined) return next(ctx);
  const timer = new AbortController();
  const handle = setTimeout(() => {
    ctx.flags.add(ResponseFlag.UpstreamRequestTimeout);
    timer.abort(upstreamTimeout(ms));
  }, ms);
  ctx.signal = AbortSignal.any([ctx.signal, timer.signal]);
  try {
    const response = await next(ctx);
    onResponseDone(response, () => clearTimeout(handle));
    return response;
  } catch (error) {
    clearTimeout(handle);
    throw timer.signal.aborted ? timer.signal.reason : error;
  }
};
