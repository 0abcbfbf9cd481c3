// bandwidth: the response body (or the request body) at most `bytesPerSecond`, released in slices of
// a 20th of a second's worth, each on a schedule kept from the first byte.
import { pacedBody } from '../hold.ts';
import type { FaultConfig } from '../schema.ts';
import type { FaultAction } from './index.ts';

const SLICES_PER_SECOND = 20;

export function bandwidthAction(config: NonNullable<FaultConfig['bandwidth']>): FaultAction {
  const bytes = Math.max(1, Math.floor(config.bytesPerSecond / SLICES_PER_SECOND));
  const slice = () => ({ bytes, afterMs: (bytes / config.bytesPerSecond) * 1000 });
  return {
    name: 'bandwidth',
    plan: () => ({ bytesPerSecond: config.bytesPerSecond, on: config.on }),
    async run(ctx, next, { fault, point }) {
      if (config.on === 'request') {
        // At `attempt`, for this try's body only; else for every try's.
        ctx.body.wrap((stream) => pacedBody(stream, slice, ctx.cancellation, fault.removed), point === 'attempt');
        return next(ctx);
      }
      const response = await next(ctx);
      return response.body ? { ...response, flushHeaders: true, body: pacedBody(response.body, slice, ctx.cancellation, fault.removed) } : response;
    },
  };
}
