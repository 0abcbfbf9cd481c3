// The statistical tests of a cohort comparison, written out because they are a few lines each: a
// two-proportion z-test (availability of the experiment cohort against the control group) and the
// Mann–Whitney U test with the normal approximation and tie correction (latency: are the cohort's
// latencies stochastically larger?). Two-sided p-values.

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** z and two-sided p for "the two success rates differ" (pooled standard error). */
export function twoProportions(successA: number, totalA: number, successB: number, totalB: number): { z: number; pValue: number } {
  if (totalA === 0 || totalB === 0) return { z: 0, pValue: 1 };
  const pooled = (successA + successB) / (totalA + totalB);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / totalA + 1 / totalB));
  if (se === 0) return { z: 0, pValue: 1 };
  const z = (successA / totalA - successB / totalB) / se;
  return { z, pValue: 2 * (1 - normalCdf(Math.abs(z))) };
}

/** U of sample a and two-sided p for "a and b come from the same distribution". */
export function mannWhitney(a: readonly number[], b: readonly number[]): { u: number; pValue: number } {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { u: 0, pValue: 1 };
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let ties = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[k] = rank;
    const t = j - i + 1;
    ties += t * t * t - t;
    i = j + 1;
  }
  const r1 = all.reduce((s, x, i) => s + (x.g === 0 ? ranks[i]! : 0), 0);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1))));
  if (sd === 0) return { u, pValue: 1 };
  const z = (u - (n1 * n2) / 2) / sd;
  return { u, pValue: 2 * (1 - normalCdf(Math.abs(z))) };
}
