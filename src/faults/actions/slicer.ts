// slicer: the response body in slices of `size` bytes with `delay` between them — a slow, dribbling
// upstream, which catches readers that assume a body arrives in one piece and idle timeouts set too short.
import { z } from 'zod';
import { Duration } from '../../config/primitives.ts';
import { pacedBody } from '../hold.ts';
import { defineAction, type FaultAction } from './action.ts';

const Slicer = z.strictObject({
  size: z.int().min(1).meta({ description: 'bytes per slice' }),
  delay: Duration.default(10).meta({ description: 'pause between slices' }),
});

export const slicer = defineAction({
  name: 'slicer',
  layer: 'http',
  schema: Slicer,
  example: { size: 100, delay: '5ms' },
  durations: ['delay'],
  create: (config) => slicerAction(config),
});

function slicerAction(config: z.output<typeof Slicer>): FaultAction {
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
