// hang: accept the request and never answer — until the caller (or its timeout) gives up, or the fault
// is removed, when the request goes on as if nothing happened.
import { hold } from '../hold.ts';
import type { FaultAction } from './index.ts';

export const hangAction: FaultAction = {
  name: 'hang',
  plan: () => ({}),
  async run(ctx, next, { fault }) {
    await hold(Infinity, ctx.cancellation, fault.removed);
    return next(ctx);
  },
};
