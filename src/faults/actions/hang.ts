// hang: accept the request and never answer — until the caller (or its timeout) gives up, or the fault
// is removed, when the request goes on as if nothing happened.
import { z } from 'zod';
import { hold } from '../hold.ts';
import { defineAction, type FaultAction } from './action.ts';

export const hang = defineAction({
  name: 'hang',
  layer: 'http',
  schema: z.strictObject({}).meta({ description: 'accept the request and never answer (until the caller gives up)' }),
  example: {},
  create: () => hangAction,
});

const hangAction: FaultAction = {
  name: 'hang',
  plan: () => ({}),
  async run(ctx, next, { fault }) {
    await hold(Infinity, ctx.cancellation, fault.removed);
    return next(ctx);
  },
};
