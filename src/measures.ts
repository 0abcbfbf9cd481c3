// The two measures every reader of requests shares — the runner's verdicts, halts and progress line,
// the analysis, the reports, the demo and the benches — so that they count and rank alike.

/** A request succeeded: it got an answer (status 0 is none: an error or a timeout) below 500. */
export function succeeded(status: number): boolean {
  return status > 0 && status < 500;
}

/** The p-th percentile (0–100) of values sorted ascending: the nearest rank at or below; NaN of none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
