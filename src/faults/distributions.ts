// Delay distributions, as samplers over a uniform [0, 1) source. Parameters are in milliseconds.
// lognormal is given by its median and 99th percentile (what people know of a latency), from which
// μ = ln(median) and σ = (ln(p99) − μ) / z₀.₉₉; pareto by its scale (the minimum) and shape α.
import type { DelayConfig } from './schema.ts';

/** The standard normal quantile at 0.99. */
export const Z99 = 2.3263478740408408;

export type Sampler = (random: () => number) => number;

export function delaySampler(delay: DelayConfig): Sampler {
  const cap = delay.max ?? Infinity;
  const base = baseSampler(delay);
  return (random) => Math.min(cap, Math.max(0, base(random)));
}

function baseSampler(delay: DelayConfig): Sampler {
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
