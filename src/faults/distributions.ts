// Delay distributions: the schema of each (the delay action names them) and samplers over a uniform [0, 1)
// source. Parameters are in milliseconds.
// lognormal is given by its median and 99th percentile (what people know of a latency), from which
// μ = ln(median) and σ = (ln(p99) − μ) / z₀.₉₉; pareto by its scale (the minimum) and shape α.
import { z } from 'zod';
import { Duration } from '../config/primitives.ts';

const positive = (what: string) => Duration.refine((ms) => ms > 0, { error: `expected a ${what} above 0` });

/** Delay distributions, one key each; every sample is at least 0 (and at most `max` when given). */
export const DISTRIBUTIONS = {
  fixed: Duration,
  uniform: z.strictObject({ min: Duration, max: Duration }).refine((u) => u.min <= u.max, { error: 'min must not exceed max' }),
  normal: z.strictObject({ mean: Duration, stddev: Duration }),
  lognormal: z.strictObject({ median: positive('median'), p99: positive('p99') }).refine((l) => l.p99 >= l.median, { error: 'p99 must not be below the median' }),
  pareto: z.strictObject({
    scale: positive('scale').meta({ description: 'the smallest delay (xm)' }),
    shape: z.number().gt(0).meta({ description: 'alpha: the lower, the heavier the tail (1.16: the 80/20 rule)' }),
  }),
};

/** A delay's distribution (exactly one key, which the delay action's schema checks) and its cap. */
export type DistributionConfig = { readonly [K in keyof typeof DISTRIBUTIONS]?: z.output<(typeof DISTRIBUTIONS)[K]> } & { readonly max?: number };

/** The standard normal quantile at 0.99. */
export const Z99 = 2.3263478740408408;

export type Sampler = (random: () => number) => number;

export function delaySampler(delay: DistributionConfig): Sampler {
  const cap = delay.max ?? Infinity;
  const base = baseSampler(delay);
  return (random) => Math.min(cap, Math.max(0, base(random)));
}

function baseSampler(delay: DistributionConfig): Sampler {
  if (delay.fixed !== undefined) {
    const ms = delay.fixed;
    return () => ms;
  }
  if (delay.uniform) {
    const { min, max } = delay.uniform;
    return (random) => min + random() * (max - min);
  }
  if (delay.normal) {
    const { mean, stddev } = delay.normal;
    return (random) => mean + stddev * standardNormal(random);
  }
  if (delay.lognormal) {
    const mu = Math.log(delay.lognormal.median);
    const sigma = (Math.log(delay.lognormal.p99) - mu) / Z99;
    return (random) => Math.exp(mu + sigma * standardNormal(random));
  }
  const { scale, shape } = delay.pareto!;
  // Inverse CDF: x = xm / U^(1/α), U in (0, 1].
  return (random) => scale / (1 - random()) ** (1 / shape);
}

/** Box–Muller: one standard normal draw from two uniform ones. */
function standardNormal(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
