// bench:cost's tables (bench/cost.ts measures, this writes): medians over a table's rounds, each
// target's added latency as the median over the paced cycles of its window less direct's, and the
// one-hop and pair reports with their ratios to nginx, to the bare undici forwarder and to Istio's figure.
import { median } from './head-to-head.ts';
import type { Wrk } from './wrk-nginx.ts';

/** Istio 1.20's published added latency for a request through two sidecars with mTLS (p99, µs). */
const ISTIO_P99_US = 298;
/** Issue 24's target for the faultline pair with mTLS: about 2× Istio's (p99 added, µs). */
const PAIR_TARGET_P99_US = 600;

/** One measured process (an nginx is its master and worker): CPU and RSS are read from its pids. */
export interface Part {
  name: string;
  pids: () => number[];
}

export interface Target {
  name: string;
  url: string;
  host?: string;
  /** Empty for direct; one for a forwarder; two (A, B) for a pair. CPU is summed over them, RSS given for each. */
  parts: Part[];
}

/** A target not started yet: its processes start only when its table runs and `--only` keeps it. */
export interface Candidate {
  name: string;
  start: () => Promise<Omit<Target, 'name'>>;
}

export interface Round {
  rps: number;
  cpuUsPerReq: number;
  /** RSS of each part after the round, bytes. */
  rssAfter: number[];
  errors: number;
  loadavg: string;
}

export interface Measured {
  targets: Target[];
  rounds: Map<string, Round[]>;
  /** Each target's paced latency windows, one per cycle (index i of every target: the same cycle). */
  windows: Map<string, Wrk[]>;
  idle: Map<string, number[]>;
}

export const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

/** Medians and differences over one table's rounds. */
function stats(m: Measured, directName: string) {
  const med = (name: string, key: 'rps' | 'cpuUsPerReq') => median(m.rounds.get(name)!.map((r) => r[key]));
  /** Latency percentile: the median over the windows. */
  const latency = (name: string, key: 'p50' | 'p99') => median(m.windows.get(name)!.map((w) => w[key]));
  const has = (name: string | undefined) => (name !== undefined && m.rounds.has(name) ? name : undefined);
  const hasDirect = m.rounds.has(directName);
  /** What a target adds in each cycle: its window's percentile less direct's window's of the same cycle. */
  const addedPerWindow = (name: string, key: 'p50' | 'p99') => m.windows.get(name)!.map((w, i) => w[key] - m.windows.get(directName)![i]![key]);
  const added = (name: string, key: 'p50' | 'p99') => (hasDirect && name !== directName ? median(addedPerWindow(name, key)) : undefined);
  /** Each part's median RSS after load, and idle, as `A + B MiB`. */
  const rssAfter = (t: Target) => `${t.parts.map((_, i) => MiB(median(m.rounds.get(t.name)!.map((r) => r.rssAfter[i]!)))).join(' + ')} MiB`;
  const rssIdle = (t: Target) => `${m.idle.get(t.name)!.map(MiB).join(' + ')} MiB`;
  const errors = [...m.rounds.values()].flat().reduce((s, r) => s + r.errors, 0) + [...m.windows.values()].flat().reduce((s, w) => s + w.errors, 0);
  const loads = [...m.rounds.values()].flat().map((r) => r.loadavg.split(' ')[0]).join(', ');
  const pacedRps = (name: string) => median(m.windows.get(name)!.map((w) => w.requests / w.seconds));
  /** One line per measured target: its added p99 in each window, µs, and the paced rate it kept. */
  const windowLines = (names: string[]) => names.filter((n) => n !== directName && m.windows.has(n)).map((n) =>
    `- ${n}: ${hasDirect ? addedPerWindow(n, 'p99').map((us) => signed(us).replace(' µs', '')).join(', ') : m.windows.get(n)!.map((w) => w.p99).join(', ')} µs (${pacedRps(n).toFixed(0)} req/s paced)`);
  return { med, latency, has, hasDirect, added, addedPerWindow, rssAfter, rssIdle, errors, loads, windowLines };
}

const signed = (us: number | undefined) => (us === undefined ? '–' : `${us >= 0 ? '+' : '−'}${Math.abs(us).toFixed(0)} µs`);
const ratio = (value: number | undefined, base: number | undefined) => (value === undefined || base === undefined || base <= 0 ? '–' : `${(value / base).toFixed(2)}×`);

/**
 * One row of a table: the target, req/s and its ratio to direct, added p50 and p99 (direct: its own),
 * then the table's own `middle` columns, then RSS idle and after load; direct's middle and RSS are '–'.
 */
function row(s: ReturnType<typeof stats>, t: Target, direct: string, middle: (cpu: number, addedP99: number | undefined) => string[]): string {
  const rps = s.med(t.name, 'rps');
  const isDirect = t.name === direct;
  const addedP99 = s.added(t.name, 'p99');
  const own = middle(s.med(t.name, 'cpuUsPerReq'), addedP99);
  const cells = [
    t.name,
    rps.toFixed(0),
    s.hasDirect ? (rps / s.med(direct, 'rps')).toFixed(2) : '–',
    isDirect ? `${s.latency(t.name, 'p50').toFixed(0)} µs` : signed(s.added(t.name, 'p50')),
    isDirect ? `${s.latency(t.name, 'p99').toFixed(0)} µs` : signed(addedP99),
    ...(isDirect ? own.map(() => '–') : own),
    isDirect ? '–' : s.rssIdle(t),
    isDirect ? '–' : s.rssAfter(t),
  ];
  return `| ${cells.join(' | ')} |`;
}

export function singleHopReport(m: Measured, names: { direct: string; nginx: string; undici: string; sidecar: string }, settings: string): string[] {
  const s = stats(m, names.direct);
  const nginxName = s.has(names.nginx);
  const undiciName = s.has(names.undici);
  const undiciAddedP99 = undiciName ? s.added(undiciName, 'p99') : undefined;
  const out = [
    `One hop. ${settings}`,
    `loadavg per round: ${s.loads}`,
    '',
    '| | req/s | × direct | added p50 | added p99 | CPU µs/req | × nginx CPU | × undici CPU | added p99 × undici | RSS idle | RSS after load |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const t of m.targets) {
    out.push(row(s, t, names.direct, (cpu, addedP99) => [cpu.toFixed(1), ratio(cpu, nginxName ? s.med(nginxName, 'cpuUsPerReq') : undefined), ratio(cpu, undiciName ? s.med(undiciName, 'cpuUsPerReq') : undefined), ratio(addedP99, undiciAddedP99)]));
  }
  out.push('', 'Added p99 in each latency cycle:', ...s.windowLines(m.targets.map((t) => t.name)));
  const sidecarName = s.has(names.sidecar);
  if (sidecarName && undiciName && s.hasDirect) {
    // Paired by cycle: the two windows of one cycle ran seconds apart, under the same spell of the machine.
    const bare = s.addedPerWindow(undiciName, 'p99');
    const ratios = s.addedPerWindow(sidecarName, 'p99').map((us, i) => (bare[i]! > 0 ? us / bare[i]! : Number.NaN)).filter(Number.isFinite);
    if (ratios.length > 0) {
      out.push(`The sidecar's added p99 ÷ the bare forwarder's, cycle by cycle: ${ratios.map((r) => `${r.toFixed(2)}×`).join(', ')}; median ${median(ratios).toFixed(2)}×, ≤ 1.5× in ${ratios.filter((r) => r <= 1.5).length} of ${ratios.length}.`);
    }
  }
  out.push('', `Targets (issue 24): sidecar CPU ≤ 1.1× undici's; added p99 ≤ 1.5× undici's; RSS ≤ 80 MiB after load, ≤ 60 MiB idle. Socket errors and non-2xx in all rounds: ${s.errors}.`);
  return out;
}

export function pairReport(m: Measured, names: { direct: string; nginx: string; undici: string; undiciTls: string; strict: string }, settings: string): string[] {
  const s = stats(m, names.direct);
  const nginxName = s.has(names.nginx);
  const nginxAddedP99 = nginxName ? s.added(nginxName, 'p99') : undefined;
  /** Node's floor for a pair as secured as `t`: the bare pair with mutual TLS for mTLS strict, the plaintext one otherwise. */
  const bareFor = (t: Target) => s.has(t.name === names.strict || t.name === names.undiciTls ? names.undiciTls : names.undici);
  const out = [
    `The pair (client → A → B → upstream). ${settings}`,
    `loadavg per round: ${s.loads}`,
    '',
    `| | req/s | × direct | added p50 | added p99 | added p99 × nginx pair's | added p99 × bare pair's (as secured) | added p99 ÷ Istio's +${ISTIO_P99_US} µs | CPU µs/req (A + B) | × nginx pair CPU | × bare pair CPU (as secured) | RSS idle (A + B) | RSS after load (A + B) |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const t of m.targets) {
    const bare = bareFor(t);
    out.push(row(s, t, names.direct, (cpu, addedP99) => [
      ratio(addedP99, nginxAddedP99),
      ratio(addedP99, bare ? s.added(bare, 'p99') : undefined),
      ratio(addedP99, ISTIO_P99_US),
      cpu.toFixed(1),
      ratio(cpu, nginxName ? s.med(nginxName, 'cpuUsPerReq') : undefined),
      ratio(cpu, bare ? s.med(bare, 'cpuUsPerReq') : undefined),
    ]));
  }
  const strictAdded = s.has(names.strict) ? s.added(names.strict, 'p99') : undefined;
  out.push(
    '',
    'Added p99 in each latency cycle:',
    ...s.windowLines(m.targets.map((t) => t.name)),
    '',
    `Istio: +${ISTIO_P99_US} µs p99 added (Istio 1.20 performance page, 2 sidecars with mTLS, bare metal). Target (issue 24): the faultline pair with mTLS strict adds ≤ ${PAIR_TARGET_P99_US} µs p99 (about 2× Istio's): ${strictAdded === undefined ? 'not measured' : `${signed(strictAdded)}, ${strictAdded <= PAIR_TARGET_P99_US ? 'met' : 'not met'}`}. nginx pair: plaintext; the faultline pair with mTLS strict is compared with the bare pair with mutual TLS, the other pairs with the plaintext one. Socket errors and non-2xx in all rounds: ${s.errors}.`,
  );
  return out;
}
