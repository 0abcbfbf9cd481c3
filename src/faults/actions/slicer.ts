// slicer: the response body in slices of `size` bytes with `delay` between them — a slow, dribbling
// upstream, which catches readers that assume a body arrives in one piece and idle timeouts set too short.
import { pacedBody } from '../hold.ts';
import type { FaultConfig } from '../schema.ts';
import type { FaultAction } from './index.ts';

export function slicerAction(config: NonNullable<FaultConfig['slicer']>): FaultAction {
  const slice = () => ({ bytes: config.size, afterMs: config.delay });
  return {
    name: 'slicer',
    plan: () => ({ size: config.size, delayMs: config.delay }),
    async run(ctx, next, { fault }) {
      const response = await next(ctx);
      return response.body ? { ...response, flushHeaders: true, body: pacedBody(response.body, slice, ctx.cancellation, fault.removed) } : response;
    },
  };
}
