// Head-to-head rounds: several sidecar processes pinned to the same CPU, loaded at the same time by
// their own connections, each one's cost read as its own CPU time per request (/proc). This machine's
// speed drifts by tens of percent within minutes, so processes measured in turns are measured on
// different machines; run together, they share one core fairly and every round compares them at the
// same moment (three identical sidecars agree within ±5 % a round this way).
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
 * Runs a warm-up and then `rounds` rounds of `seconds`; `contenders(round)` gives, for each variant
 * being compared, the process and route that stand for it in that round (so variants can swap
 * processes from round to round).
 */
export async function headToHead(contenders: (round: number) => readonly Contender[], rounds: number, seconds: number, connections = 16): Promise<Rounds> {
  // Warm-up: the JIT and the heap settle over the first seconds of load.
  await Promise.all(contenders(0).map((c) => run(c.url, c.host, { connections, duration: 3 * seconds })));
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
