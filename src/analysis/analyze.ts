// The analysis of a run from its recording alone (journal.json, events.ndjson, load.ndjson,
// experiment.yaml): windows and per-service figures, every hypothesis's verdict, attribution of failed
// requests to faults and policies, policy checks, the propagation graph, the cohort comparison, the
// resilience score and the regression against earlier runs. `faultline report DIR` runs it offline.
//
// Requests are joined across hops by x-request-id, which every sidecar keeps (and sets when absent)
// and the demo's apps pass on, as Envoy's tracing does; traceId is carried where the mesh traces.
import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Journal } from '../experiments/journal.ts';
import { methodLength, parseExperiment, type Experiment } from '../experiments/spec.ts';
import { expectVerdict, samplesFor, steadyStateVerdict, type Recording } from '../experiments/verdicts.ts';
import { isSample, loadFigures, type LoadRecord } from '../experiments/load.ts';
import { attribute, impacts } from './attribution.ts';
import { percentile, succeeded } from '../measures.ts';
import { groupBy, targetsOfStep, type Event } from './common.ts';
import { propagate } from './propagation.ts';
import { mannWhitney, twoProportions } from './stats.ts';
import type {
  Analysis,
  AnalysisWindow,
  Attribution,
  AttributionRow,
  Bucket,
  CohortComparison,
  FaultImpact,
  HypothesisVerdict,
  Latency,
  Policies,
  Policy,
  Propagation,
  Regression,
  Score,
  ServiceStats,
} from './types.ts';


export interface RunFiles {
  readonly dir: string;
  readonly experiment: Experiment;
  readonly journal: Journal;
  readonly events: readonly Event[];
  readonly load: readonly LoadRecord[];
}

export async function readRun(dir: string): Promise<RunFiles> {
  const experiment = parseExperiment(await readFile(join(dir, 'experiment.yaml'), 'utf8'), join(dir, 'experiment.yaml'));
  const journal = JSON.parse(await readFile(join(dir, 'journal.json'), 'utf8')) as Journal;
  const ndjson = async <T>(name: string): Promise<T[]> => {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as T);
  };
  return { dir, experiment, journal, events: await ndjson<Event>('events.ndjson'), load: await ndjson<LoadRecord>('load.ndjson') };
}

/** Points per hypothesis kind in the resilience score (docs/reports.md). */
export const SCORE_WEIGHTS: Readonly<Record<string, number>> = {
  availability: 3,
  latency: 2,
  errorBudgetBurn: 2,
  retriesMask: 2,
  breaker: 2,
  outlierEjects: 1,
  recovers: 2,
};

export async function analyze(run: RunFiles): Promise<Analysis> {
  const { experiment, journal, load } = run;
  // A request the load cut at its own stop is no outcome of the system: its trace leaves every figure.
  // The open model names them by request id; the closed one records none, so its cut requests are the
  // entry's DC after the load's end.
  const cut = new Set(load.filter((r) => r.kind === 'cut' && r.requestId).map((r) => r.requestId));
  const closedEnd = journal.load?.model === 'closed' ? journal.load.to : Infinity;
  const sidecarService = serviceOfSidecar(run.events);
  const entryCut = (e: Event) => e.type === 'request.done' && e.direction === 'inbound' && sidecarService.get(e.sidecar) === experiment.load.entry && e.time >= closedEnd && (e.flags as string[]).includes('DC');
  for (const e of run.events) if (entryCut(e) && e.requestId) cut.add(String(e.requestId));
  const events = cut.size ? run.events.filter((e) => !cut.has(e.requestId as string)) : run.events;
  const phase = (name: string) => journal.phases.find((p) => p.name === name);
  // The windows the runner judged, when the journal has them, so that summary and report count the same samples.
  const span = (name: string) => {
    const judged = journal.windows?.find((w) => w.name === name);
    if (judged) return { from: judged.from, to: judged.to };
    const p = phase(name);
    return p ? { from: Date.parse(p.startedAt), to: p.endedAt ? Date.parse(p.endedAt) : (journal.finishedAt ? Date.parse(journal.finishedAt) : Date.now()) } : undefined;
  };
  const windows: AnalysisWindow[] = [];
  const baseline = span('baseline');
  if (baseline) windows.push({ name: 'baseline', kind: 'baseline', ...baseline });
  for (const f of journal.faults) {
    if (f.injectedAt) windows.push({ name: f.id, kind: 'fault', from: Date.parse(f.injectedAt), to: f.removedAt ? Date.parse(f.removedAt) : Date.parse(journal.finishedAt ?? new Date().toISOString()) });
  }
  const recovery = span('recovery');
  if (recovery) windows.push({ name: 'recovery', kind: 'recovery', ...recovery });

  const recording: Recording = {
    entry: experiment.load.entry,
    load,
    events,
    cohort: experiment.load.cohort !== undefined,
    rollbackAt: journal.rollback ? Date.parse(journal.rollback.at) : null,
    faults: journal.faults.filter((f) => f.injectedAt).map((f) => ({ id: f.id, injectedAt: Date.parse(f.injectedAt!), removedAt: f.removedAt ? Date.parse(f.removedAt) : null, targets: targetsOfStep(experiment, f.step) })),
  };
  const services = [...new Set([...(experiment.load.entry ? [experiment.load.entry] : []), ...events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service).map((e) => String(e.service))])].sort();
  const calls = (service: string) => samplesFor(recording, service, { name: 'run', from: -Infinity, to: Infinity });

  const stats: ServiceStats[] = [];
  for (const service of services) {
    const all = calls(service);
    for (const w of windows) {
      const inside = all.filter((c) => c.t >= w.from && c.t < w.to);
      const availability = ratio(inside.filter((r) => succeeded(r.status)).length, inside.length);
      const slos = experiment.steadyState.filter((h) => h.errorBudgetBurn?.service === service).map((h) => h.errorBudgetBurn!.slo);
      stats.push({
        service,
        window: w.name,
        requests: inside.length,
        rps: inside.length / Math.max(0.001, (w.to - w.from) / 1000),
        availability,
        latency: latencyOf(inside.filter((c) => c.status > 0).map((c) => c.latencyMs)),
        burn: slos.map((slo) => ({ slo, rate: (100 - availability) / (100 - slo) })),
      });
    }
  }

  const timeseries: Bucket[] = [];
  for (const service of services) {
    const buckets = new Map<number, { status: number; latencyMs: number }[]>();
    for (const c of calls(service)) {
      const t = Math.floor(c.t / 1000) * 1000;
      let list = buckets.get(t);
      if (!list) buckets.set(t, (list = []));
      list.push(c);
    }
    for (const [t, list] of [...buckets].sort((a, b) => a[0] - b[0])) {
      const latencies = list.filter((c) => c.status > 0).map((c) => c.latencyMs);
      const l = latencyOf(latencies);
      timeseries.push({ service, t, requests: list.length, errors: list.filter((c) => !succeeded(c.status)).length, p50: l.p50, p99: l.p99 });
    }
  }

  const hypotheses = verdicts(experiment, journal, recording, windows);
  const byRequest = groupBy(events.filter((e) => typeof e.requestId === 'string' && e.requestId), (e) => String(e.requestId));
  const attribution = attribute(experiment, events, byRequest, sidecarService);
  const faults = impacts(experiment, journal, events, byRequest, attribution);
  const policies = policyChecks(experiment, journal, events, recording, windows, hypotheses);
  const propagation = propagate(experiment, events, load, byRequest, sidecarService, windows);
  const score = scoreOf(hypotheses, experiment);
  return {
    schema: 'faultline.report/v1',
    experiment: {
      name: experiment.name,
      description: experiment.description,
      seed: journal.seed,
      outcome: journal.outcome,
      reason: journal.reason,
      startedAt: Date.parse(journal.startedAt),
      finishedAt: journal.finishedAt ? Date.parse(journal.finishedAt) : null,
      complete: journal.status === 'complete',
    },
    windows,
    services: stats,
    timeseries,
    faults,
    halts: journal.halts.map((h) => ({ at: Date.parse(h.at), reason: h.reason })),
    hypotheses,
    attribution,
    policies,
    propagation,
    score,
    regression: await regression(run.dir, score, hypotheses, stats, experiment),
    cohorts: cohortComparison(experiment, load, windows),
    load: journal.load ? loadFigures(load, journal.load) : null,
  };
}

function verdicts(experiment: Experiment, journal: Journal, recording: Recording, windows: AnalysisWindow[]): HypothesisVerdict[] {
  const out: HypothesisVerdict[] = [];
  const halted = journal.outcome === 'halted';
  const faultWindows = windows.filter((w) => w.kind === 'fault');
  const method = faultWindows.length
    ? { name: 'method', from: Math.min(...faultWindows.map((w) => w.from)), to: Math.max(...faultWindows.map((w) => w.to)) }
    : undefined;
  experiment.steadyState.forEach((h, i) => {
    const kind = Object.keys(h).find((k) => h[k as keyof typeof h] !== undefined)!;
    for (const w of [windows.find((x) => x.kind === 'baseline'), method && { ...method, kind: 'fault' as const }, windows.find((x) => x.kind === 'recovery')]) {
      if (!w) continue;
      const v = steadyStateVerdict(h, recording, w);
      out.push({ id: `steadyState[${i}]@${w.name}`, kind, hypothesis: v.hypothesis, window: w.name, outcome: v.outcome, measured: v.measured, objective: v.objective, samples: v.samples });
    }
  });
  experiment.expect.forEach((e, i) => {
    const kind = Object.keys(e).find((k) => e[k as keyof typeof e] !== undefined)!;
    if (!method) {
      out.push({ id: `expect[${i}]`, kind, hypothesis: kind, window: 'method', outcome: 'inconclusive', measured: 'no fault was injected', objective: '-', samples: 0 });
      return;
    }
    const v = expectVerdict(e, experiment, recording, method);
    // A run halted early cannot show what the policies would have done by the end.
    const outcome = halted && v.outcome === 'fail' ? 'inconclusive' : v.outcome;
    out.push({ id: `expect[${i}]`, kind, hypothesis: v.hypothesis, window: v.window, outcome, measured: halted && v.outcome === 'fail' ? `${v.measured} (halted early)` : v.measured, objective: v.objective, samples: v.samples });
  });
  return out;
}

function policyChecks(experiment: Experiment, journal: Journal, events: readonly Event[], recording: Recording, windows: AnalysisWindow[], hypotheses: HypothesisVerdict[]): Policies {
  const services = [...new Set(events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service).map((e) => String(e.service)))].sort();
  const faultWindows = windows.filter((w) => w.kind === 'fault');
  const retries = services.map((service) => {
    const done = events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service === service);
    const outcome = new Map(done.map((e) => [String(e.requestId), e.status as number]));
    const aborts = events.filter((e) => e.type === 'fault.applied' && e.point === 'attempt' && e.destination === service && e.action === 'abort' && outcome.has(String(e.requestId)));
    const masked = aborts.filter((e) => succeeded(outcome.get(String(e.requestId))!)).length;
    const attempts = done.reduce((sum, e) => sum + ((e.attempts as number) || 1), 0);
    return { service, injectedAborts: aborts.length, masked, maskingRatio: aborts.length ? (100 * masked) / aborts.length : null, attempts, requests: done.length, amplification: done.length ? attempts / done.length : null };
  });
  const breakers = [...new Set(events.filter((e) => e.type === 'breaker.state').map((e) => String(e.service)))].map((service) => {
    const targeting = recording.faults.filter((f) => f.targets.includes(service));
    const start = targeting.length ? Math.min(...targeting.map((f) => f.injectedAt)) : null;
    const end = targeting.length ? Math.max(...targeting.map((f) => f.removedAt ?? recording.rollbackAt ?? Date.now())) : null;
    const transitions = events.filter((e) => e.type === 'breaker.state' && e.service === service);
    const opened = start === null ? undefined : transitions.find((e) => e.to === 'open' && e.time >= start);
    const closed = end === null ? undefined : transitions.find((e) => e.to === 'closed' && e.time >= end);
    return { service, opensAfterMs: opened && start !== null ? opened.time - start : null, closesAfterMs: closed && end !== null ? closed.time - end : null };
  });
  const ejections = events.filter((e) => e.type === 'outlier.ejected').map((e) => {
    const back = events.find((r) => r.type === 'outlier.restored' && r.service === e.service && r.endpoint === e.endpoint && r.time >= e.time);
    return { service: String(e.service), endpoint: String(e.endpoint), ejectedAt: e.time, restoredAt: back?.time ?? null };
  });
  const recovered = hypotheses.filter((h) => h.kind === 'recovers');
  const recovery = experiment.expect.flatMap((e, i) => (e.recovers ? [{ service: e.recovers.service, afterMs: parseMs(recovered.find((h) => h.id === `expect[${i}]`)?.measured) }] : []));
  const retryTimeline = countPerSecond(events.filter((e) => e.type === 'retry.attempt'), (e) => String(e.service)).map(([service, t, retries]) => ({ service, t, retries }));
  const breakerTimeline = events.filter((e) => e.type === 'breaker.state').map((e) => ({ service: String(e.service), t: e.time, state: e.to as 'closed' | 'open' | 'half-open' }));
  void faultWindows;
  void journal;
  return { retries, breakers, ejections, recovery, retryTimeline, breakerTimeline };
}

/**
 * The resilience score: each hypothesis earns its kind's weight when it passes, half when it is
 * inconclusive, nothing when it fails; the score is the share of the weights earned, 0–100.
 */
function scoreOf(hypotheses: readonly HypothesisVerdict[], _experiment: Experiment): Score {
  const kinds = [...new Set(hypotheses.map((h) => h.kind))];
  const parts = kinds.map((kind) => {
    const of = hypotheses.filter((h) => h.kind === kind);
    const weight = SCORE_WEIGHTS[kind] ?? 1;
    const earned = of.reduce((s, h) => s + (h.outcome === 'pass' ? 1 : h.outcome === 'inconclusive' ? 0.5 : 0), 0);
    return { kind, weight, passed: of.filter((h) => h.outcome === 'pass').length, total: of.length, points: weight * earned };
  });
  const possible = parts.reduce((s, p) => s + p.weight * p.total, 0);
  return { value: possible === 0 ? 0 : Math.round((1000 * parts.reduce((s, p) => s + p.points, 0)) / possible) / 10, parts };
}

async function regression(dir: string, score: Score, hypotheses: readonly HypothesisVerdict[], stats: readonly ServiceStats[], experiment: Experiment): Promise<Regression | null> {
  const parent = dirname(dir);
  const siblings = (await readdir(parent).catch(() => [] as string[])).filter((d) => d < basename(dir)).sort().reverse().slice(0, 5);
  const previous: { dir: string; startedAt: number; outcome: string | null; score: number; report: { hypotheses: HypothesisVerdict[]; services: ServiceStats[] } }[] = [];
  for (const name of siblings) {
    try {
      const report = JSON.parse(await readFile(join(parent, name, 'report.json'), 'utf8')) as { experiment: { startedAt: number; outcome: string | null }; score: Score; hypotheses: HypothesisVerdict[]; services: ServiceStats[] };
      previous.push({ dir: join(parent, name), startedAt: report.experiment.startedAt, outcome: report.experiment.outcome, score: report.score.value, report });
    } catch {
      // a run without a report (killed, or older): not compared
    }
  }
  if (previous.length === 0) return null;
  const last = previous[0]!;
  const worse: string[] = [];
  if (score.value < last.score) worse.push(`score ${score.value} < ${last.score} in the previous run`);
  for (const h of hypotheses) {
    const before = last.report.hypotheses.find((p) => p.id === h.id);
    if (before?.outcome === 'pass' && h.outcome !== 'pass') worse.push(`${h.hypothesis} [${h.window}]: ${before.outcome} → ${h.outcome}`);
  }
  const entry = experiment.load.entry;
  for (const s of stats.filter((x) => x.service === entry)) {
    const before = last.report.services.find((p) => p.service === s.service && p.window === s.window);
    if (!before) continue;
    if (s.availability < before.availability - 1) worse.push(`availability of ${s.service} [${s.window}] ${s.availability.toFixed(2)} % < ${before.availability.toFixed(2)} %`);
    if (s.latency.p99 > before.latency.p99 * 1.2 && s.latency.p99 - before.latency.p99 > 5) worse.push(`p99 of ${s.service} [${s.window}] ${s.latency.p99.toFixed(1)} ms > ${before.latency.p99.toFixed(1)} ms`);
  }
  return { previous: previous.map(({ dir: d, startedAt, outcome, score: s }) => ({ dir: d, startedAt, outcome, score: s })), worse };
}

function cohortComparison(experiment: Experiment, load: readonly LoadRecord[], windows: AnalysisWindow[]): CohortComparison | null {
  if (!experiment.load.cohort || !experiment.load.entry) return null;
  const faultWindows = windows.filter((w) => w.kind === 'fault');
  if (faultWindows.length === 0) return null;
  const inside = (r: LoadRecord) => faultWindows.some((w) => r.t >= w.from && r.t < w.to);
  const group = (cohort: LoadRecord['cohort']) => load.filter((r) => isSample(r) && r.cohort === cohort && inside(r));
  const exp = group('experiment');
  const ctl = group('control');
  const figures = (rs: LoadRecord[]) => ({ requests: rs.length, availability: ratio(rs.filter((r) => succeeded(r.status)).length, rs.length), p99: latencyOf(rs.filter((r) => r.status > 0).map((r) => r.latencyMs)).p99 });
  const availabilityTest = twoProportions(exp.filter((r) => succeeded(r.status)).length, exp.length, ctl.filter((r) => succeeded(r.status)).length, ctl.length);
  const latencyTest = mannWhitney(exp.filter((r) => r.status > 0).map((r) => r.latencyMs), ctl.filter((r) => r.status > 0).map((r) => r.latencyMs));
  return {
    service: experiment.load.entry,
    experiment: figures(exp),
    control: figures(ctl),
    availabilityTest: { ...availabilityTest, significant: availabilityTest.pValue < 0.05 },
    latencyTest: { ...latencyTest, significant: latencyTest.pValue < 0.05 },
  };
}


function ratio(part: number, whole: number): number {
  return whole === 0 ? NaN : (100 * part) / whole;
}

export function latencyOf(values: readonly number[]): Latency {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1)! };
}

function serviceOfSidecar(events: readonly Event[]): Map<string, string> {
  // An outbound request.done names its sidecar's own service as source.
  const map = new Map<string, string>();
  for (const e of events) if (e.type === 'request.done' && e.direction === 'outbound' && !map.has(e.sidecar)) map.set(e.sidecar, String(e.source));
  for (const e of events) if (e.type === 'request.done' && e.direction === 'inbound' && !map.has(e.sidecar)) map.set(e.sidecar, e.sidecar.replace(/-\d+$/, ''));
  return map;
}



function countPerSecond(events: readonly Event[], key: (e: Event) => string): [string, number, number][] {
  const counts = new Map<string, number>();
  for (const e of events) {
    const k = `${key(e)}\u0000${Math.floor(e.time / 1000) * 1000}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => {
    const [service, t] = k.split('\u0000') as [string, string];
    return [service, Number(t), n] as [string, number, number];
  }).sort((a, b) => a[1] - b[1]);
}

function parseMs(text: string | undefined): number | null {
  const match = text === undefined ? null : /^(\d+) ms/.exec(text);
  return match ? Number(match[1]) : null;
}

export { methodLength };
