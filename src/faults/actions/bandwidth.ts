// bandwidth: the response body (or the request body) at most `bytesPerSecond`, released in slices of
// a 20th of a second's worth, each on a schedule kept from the first byte.
import { z } from 'zod';
import { pacedBody } from '../hold.ts';
import { defineAction, type FaultAction } from './action.ts';

const SLICES_PER_SECOND = 20;

const Bandwidth = z.strictObject({
  bytesPerSecond: z.int().min(1),
  on: z.enum(['response', 'request']).default('response'),
});

export const bandwidth = defineAction({
  name: 'bandwidth',
  layer: 'http',
  schema: Bandwidth,
  example: { bytesPerSecond: 1024 },
  create: (config) => bandwidthAction(config),
});

function bandwidthAction(config: z.output<typeof Bandwidth>): FaultAction {
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
