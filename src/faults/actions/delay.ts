// delay: hold the request before it goes upstream, before its response headers come back, or before
// its response body — for a time drawn from the fault's distribution. Bounded by the request's
// timeouts (a delay longer than a per-try timeout is a timed-out try), ended early when the fault goes.
import { ResponseFlag } from '../../errors.ts';
import { delaySampler } from '../distributions.ts';
import { delayedBody, hold } from '../hold.ts';
import type { DelayConfig } from '../schema.ts';
import type { FaultAction } from './index.ts';

export function delayAction(config: DelayConfig): FaultAction {
  const sample = delaySampler(config);
  return {
    name: 'delay',
    plan: (random) => ({ delayMs: Math.round(sample(random) * 1000) / 1000, before: config.before }),
    async run(ctx, next, { fault, plan }) {
      const ms = plan.delayMs as number;
      ctx.flags.add(ResponseFlag.DelayInjected);
      if (config.before === 'request') {
        await hold(ms, ctx.cancellation, fault.removed);
        return next(ctx);
      }
      const response = await next(ctx);
      if (config.before === 'headers') {
        try {
          await hold(ms, ctx.cancellation, fault.removed);
        } catch (error) {
          response.body?.destroy();
          throw error;
        }
        return response;
      }
      return response.body ? { ...response, flushHeaders: true, body: delayedBody(response.body, ms, ctx.cancellation, fault.removed) } : response;
    },
  };
}
