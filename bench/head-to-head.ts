// Head-to-head rounds: several sidecar processes pinned to the same CPU, loaded at the same time by
// their own connections, each one's cost read as its own CPU time per request (/proc). This machine's
// speed drifts by tens of percent within minutes, so processes measured in turns are measured on
// different machines; run together, they share one core fairly and every round compares them at the
// same moment (three identical sidecars agree within ±5 % a round this way).
//
// But a process keeps the speed it drew when it started, for its whole life: four identical sidecars
// run head to head differed by up to 13 % (one at 0.87× another in every one of eleven rounds), so
// one process per variant measures the processes as much as the variants. `sessions` therefore
// starts fresh processes for every session and reports each variant's ratio per session; the median
// over sessions is the figure. The luck is not V8's seeds nor the address-space layout: four
// identical sidecars started with --random-seed and --hash-seed fixed, under `setarch -R`, still
// spread 0.84–1.07 per session; nor did two processes per variant (CPU and requests pooled) narrow
// it (A/A per session 0.96–1.23, 2026-11-26).
import seedrandom from 'seedrandom';
import { run } from './load.ts';
import { cpuMs } from './processes.ts';

/** One process under load in a round: its pid, and where and as which host to send requests. */
export interface Contender {
  readonly pid: number;
  readonly url: string;
  readonly host: string;
}

export interface Rounds {
  /** Per variant, per round: CPU ms per 1,000 requests. */
  readonly cost: number[][];
  /** Per variant, per round: requests per second. */
  readonly rps: number[][];
  /** Per variant, per round: the share of a CPU it used. */
  readonly share: number[][];
}

/**
 * Runs a warm-up (`warmupS` seconds, all loaded at once) and then `rounds` rounds of `seconds`; `contenders(round)` gives, for each variant
 * being compared, the process and route that stand for it in that round (so variants can swap
 * processes from round to round).
 */
export async function headToHead(contenders: (round: number) => readonly Contender[], rounds: number, seconds: number, connections = 16, warmupS = 3 * seconds): Promise<Rounds> {
  // Warm-up: the JIT and the heap settle over the first seconds of load.
  if (warmupS > 0) await Promise.all(contenders(0).map((c) => run(c.url, c.host, { connections, duration: warmupS })));
  const variants = contenders(0).length;
  const lists = () => Array.from({ length: variants }, () => [] as number[]);
  const result: Rounds = { cost: lists(), rps: lists(), share: lists() };
  for (let round = 0; round < rounds; round++) {
    const these = contenders(round);
    const before = these.map((c) => cpuMs(c.pid));
    const started = performance.now();
    const results = await Promise.all(these.map((c) => run(c.url, c.host, { connections, duration: seconds })));
    const wall = performance.now() - started;
    these.forEach((c, v) => {
      const used = cpuMs(c.pid) - before[v]!;
      result.cost[v]!.push((used / results[v]!.requests.total) * 1000);
      result.rps[v]!.push(results[v]!.requests.total / (wall / 1000));
      result.share[v]!.push(used / wall);
    });
  }
  return result;
}

/** Round by round, how many requests a CPU-second serves with variant `v` relative to variant `base`. */
export function perCpuRatios(rounds: Rounds, v: number, base = 0): number[] {
  return rounds.cost[base]!.map((b, i) => b / rounds.cost[v]![i]!);
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
}

/**
 * A 95 % interval for the median of `xs` (one ratio per session), by bootstrap: the medians of
 * 10,000 resamples of the sessions with replacement, seeded (the same numbers give the same
 * interval). With a dozen sessions whose processes each drew their own speed, the median alone
 * moves by a couple of points from one run to the next; the interval says how far it can.
 */
export function medianInterval(xs: readonly number[], resamples = 10_000): [number, number] {
  const random = seedrandom('faultline');
  const medians = new Float64Array(resamples);
  const sample = new Array<number>(xs.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < xs.length; i++) sample[i] = xs[Math.floor(random() * xs.length)]!;
    medians[r] = median(sample);
  }
  medians.sort();
  return [medians[Math.floor(0.025 * resamples)]!, medians[Math.ceil(0.975 * resamples) - 1]!];
}

/** A ratio's target (at least `target`) judged on its interval: met only when all of it is, not met when none of it is. */
export function verdict([low, high]: readonly [number, number], target: number): string {
  if (low >= target) return 'met';
  if (high < target) return 'NOT met';
  return 'not settled (the interval spans it)';
}

/** One session's processes: who to load, and how to stop them afterwards. */
export interface Session {
  readonly contenders: readonly Contender[];
  stop(): Promise<void>;
}

/**
 * `count` sessions, each with fresh processes from `start(session)`: every contender warmed alone
 * for `warmupS` (a core of its own, so the JIT settles sooner than on a shared one), then `rounds`
 * rounds of `seconds` head to head, then stopped. `during(session)` runs before the stop (a
 * bench reads counters there). Returns each session's rounds.
 */
export async function sessions(
  count: number,
  start: (session: number) => Promise<Session>,
  options: { rounds: number; seconds: number; warmupS: number; during?: (session: number) => Promise<void> },
): Promise<Rounds[]> {
  const all: Rounds[] = [];
  for (let session = 0; session < count; session++) {
    const { contenders, stop } = await start(session);
    try {
      for (const c of contenders) await run(c.url, c.host, { connections: 16, duration: options.warmupS });
      all.push(await headToHead(() => contenders, options.rounds, options.seconds, 16, 0));
      await options.during?.(session);
    } finally {
      await stop();
    }
  }
  return all;
}

/** Per session, the median over its rounds of variant `v`'s requests per CPU-second relative to `base`'s. */
export function sessionRatios(all: readonly Rounds[], v: number, base = 0): number[] {
  return all.map((rounds) => median(perCpuRatios(rounds, v, base)));
}
