// delay: hold the request before it goes upstream, before its response headers come back, or before
// its response body — for a time drawn from the fault's distribution. Bounded by the request's
// timeouts (a delay longer than a per-try timeout is a timed-out try), ended early when the fault goes.
import { z } from 'zod';
import { Duration } from '../../config/primitives.ts';
import { ResponseFlag } from '../../errors.ts';
import { DISTRIBUTIONS, delaySampler } from '../distributions.ts';
import { oneOf } from '../fields.ts';
import { delayedBody, hold } from '../hold.ts';
import { defineAction, type FaultAction } from './action.ts';

const Delay = z
  .strictObject({
    fixed: DISTRIBUTIONS.fixed.optional(),
    uniform: DISTRIBUTIONS.uniform.optional(),
    normal: DISTRIBUTIONS.normal.optional(),
    lognormal: DISTRIBUTIONS.lognormal.optional(),
    pareto: DISTRIBUTIONS.pareto.optional(),
    before: z.enum(['request', 'headers', 'body']).default('request').meta({
      description: 'request: before the request goes upstream; headers: before the response headers come back; body: before the response body',
    }),
    max: Duration.optional().meta({ description: 'cap on any one sample' }),
  })
  .superRefine(oneOf(Object.keys(DISTRIBUTIONS), 'distribution'));

export type DelayConfig = z.output<typeof Delay>;

export const delay = defineAction({
  name: 'delay',
  layer: 'http',
  schema: Delay,
  example: { uniform: { min: '10ms', max: '20ms' }, max: '15ms' },
  durations: ['fixed', 'max', 'uniform.min', 'uniform.max', 'normal.mean', 'normal.stddev', 'lognormal.median', 'lognormal.p99', 'pareto.scale'],
  create: (config) => delayAction(config),
});

function delayAction(config: DelayConfig): FaultAction {
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
