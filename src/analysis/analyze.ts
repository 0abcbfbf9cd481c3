// The analysis of a run from its recording alone (journal.json, events.ndjson, load.ndjson,
// experiment.yaml, and mesh.yaml — the config in force when it began — where the run kept one):
// windows and per-service figures, every hypothesis's verdict, attribution of failed requests to faults
// and policies, policy checks, the propagation graph, the cohort comparison, the resilience score and
// the regression against earlier runs. `faultline report DIR` runs it offline.
//
// Requests are joined across hops by x-request-id, which every sidecar keeps (and sets when absent)
// and the demo's apps pass on, as Envoy's tracing does; traceId is carried where the mesh traces.
import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import type { Journal } from '../experiments/journal.ts';
import { methodLength, parseExperiment, type Experiment } from '../experiments/spec.ts';
import { abortsWithOutcome, expectVerdict, samplesFor, steadyStateVerdict, type Recording } from '../experiments/verdicts.ts';
import { isSample, loadFigures, type LoadRecord } from '../experiments/load.ts';
import { attribute, impacts } from './attribution.ts';
import { lintSection, type RunMesh } from './lint.ts';
import { bucketEdges, retryTimeline as retriesOverTime, timeseries as timeseriesOf } from './buckets.ts';
import { percentile, callSucceeded, succeeded } from '../measures.ts';
import { groupBy, targetsOfStep, type Event } from './common.ts';
import { propagate } from './propagation.ts';
import { mannWhitney, twoProportions } from './stats.ts';
import type {
  Analysis,
  AnalysisWindow,
  Attribution,
  AttributionRow,
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
  /** The mesh config in force when the run began (mesh.yaml), for the routes' policies; absent in older runs. */
  readonly config?: Snapshot;
  /** The same mesh file as text and parsed, for linting it with the run's recording (analysis/lint.ts). */
  readonly mesh?: RunMesh;
}

export async function readRun(dir: string): Promise<RunFiles> {
  const experiment = parseExperiment(await readFile(join(dir, 'experiment.yaml'), 'utf8'), join(dir, 'experiment.yaml'));
  const journal = JSON.parse(await readFile(join(dir, 'journal.json'), 'utf8')) as Journal;
  const ndjson = async <T>(name: string): Promise<T[]> => {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as T);
  };
  const meshFile = join(dir, 'mesh.yaml');
  const meshText = await readFile(meshFile, 'utf8').catch(() => undefined);
  const parsed = meshText === undefined ? undefined : parseConfig(meshText, meshFile);
  const config = parsed && compileSnapshot(parsed, meshFile);
  const mesh = parsed && config && { file: meshFile, text: meshText!, config: parsed, snapshot: config };
  return { dir, experiment, journal, events: await ndjson<Event>('events.ndjson'), load: await ndjson<LoadRecord>('load.ndjson'), ...(config && { config }), ...(mesh && { mesh }) };
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
      const availability = ratio(inside.filter((r) => callSucceeded(r)).length, inside.length);
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

  const series = new Map(services.map((s) => [s, calls(s)]));
  const edges = bucketEdges(Date.parse(journal.startedAt), windows, [...[...series.values()].flatMap((cs) => cs.map((c) => c.t)), ...events.filter((e) => e.type === 'retry.attempt').map((e) => e.time)]);
  const timeseries = timeseriesOf(services, (s) => series.get(s)!, edges);

  const hypotheses = verdicts(experiment, journal, recording, windows);
  const byRequest = groupBy(events.filter((e) => typeof e.requestId === 'string' && e.requestId), (e) => String(e.requestId));
  const routes = run.config?.routes;
  const attribution = attribute(experiment, events, byRequest, sidecarService, (name) => (routes ? (routes.find((r) => r.name === name) ?? null) : undefined));
  const faults = impacts(experiment, journal, events, byRequest, attribution);
  const policies = policyChecks(experiment, journal, events, recording, windows, hypotheses, edges);
  const propagation = propagate(experiment, events, load, byRequest, sidecarService, windows);
  const score = scoreOf(hypotheses, windows);
  // The lint findings of the run's mesh, on the whole recording (the requests the load cut too: lint reads calls, not outcomes).
  const lint = run.mesh && lintSection({ dir: run.dir, mesh: run.mesh, experiment, events: run.events, windows, attribution, hypotheses, halts: journal.halts.map((h) => h.reason) });
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
      rollback: journal.rollback && { verified: journal.rollback.verified, remaining: journal.rollback.remaining },
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
    ...(lint && { lint }),
  };
}

function verdicts(experiment: Experiment, journal: Journal, recording: Recording, windows: AnalysisWindow[]): HypothesisVerdict[] {
  const out: HypothesisVerdict[] = [];
  const halted = journal.outcome === 'halted';
  const faultWindows = windows.filter((w) => w.kind === 'fault');
  const method = faultWindows.length
    ? { name: 'method', kind: 'fault' as const, from: Math.min(...faultWindows.map((w) => w.from)), to: Math.max(...faultWindows.map((w) => w.to)) }
    : undefined;
  // Every hypothesis in every window it names, measured or not: a gate must see what was never tested.
  const judged = { baseline: windows.find((x) => x.kind === 'baseline'), method, recovery: windows.find((x) => x.kind === 'recovery') };
  experiment.steadyState.forEach((h, i) => {
    const kind = Object.keys(h).find((k) => h[k as keyof typeof h] !== undefined)!;
    for (const [name, w] of Object.entries(judged)) {
      const id = `steadyState[${i}]@${name}`;
      if (!w) {
        const v = steadyStateVerdict(h, recording, { name, from: 0, to: 0 });
        out.push({ id, kind, hypothesis: v.hypothesis, window: name, outcome: 'not-run', measured: `not measured: ${notReached(journal, name)}`, objective: v.objective, samples: 0 });
        continue;
      }
      const v = steadyStateVerdict(h, recording, w);
      out.push({ id, kind, hypothesis: v.hypothesis, window: w.name, outcome: v.outcome, measured: v.measured, objective: v.objective, samples: v.samples });
    }
  });
  experiment.expect.forEach((e, i) => {
    const kind = Object.keys(e).find((k) => e[k as keyof typeof e] !== undefined)!;
    if (!method) {
      out.push({ id: `expect[${i}]`, kind, hypothesis: kind, window: 'method', outcome: 'not-run', measured: `not measured: ${notReached(journal, 'method')}`, objective: '-', samples: 0 });
      return;
    }
    const v = expectVerdict(e, experiment, recording, method);
    // A run halted early cannot show what the policies would have done by the end.
    const outcome = halted && v.outcome === 'fail' ? 'inconclusive' : v.outcome;
    out.push({ id: `expect[${i}]`, kind, hypothesis: v.hypothesis, window: v.window, outcome, measured: halted && v.outcome === 'fail' ? `${v.measured} (halted early)` : v.measured, objective: v.objective, samples: v.samples });
  });
  return out;
}

/** Why a run has no `window` (baseline, method, recovery), from how it ended. */
function notReached(journal: Journal, window: string): string {
  const reason = journal.reason ? `: ${journal.reason}` : '';
  if (journal.status !== 'complete') return 'the recording ends before it (the runner stopped)';
  if (journal.outcome === 'error') return `the run ended in an error before it${reason}`;
  if (journal.outcome === 'inconclusive') return 'the steady state did not hold in the baseline, so no fault was injected';
  if (journal.outcome === 'halted') return `the run halted before it${reason}`;
  return window === 'method' ? 'no fault was injected' : 'the run has no such phase';
}

function policyChecks(experiment: Experiment, journal: Journal, events: readonly Event[], recording: Recording, windows: AnalysisWindow[], hypotheses: HypothesisVerdict[], edges: readonly number[]): Policies {
  const services = [...new Set(events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service).map((e) => String(e.service)))].sort();
  const faultWindows = windows.filter((w) => w.kind === 'fault');
  const retries = services.map((service) => {
    const done = events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service === service);
    // Each abort with the call it hit (the same sidecar, request and destination): verdicts.ts, as the run's own verdict judges it.
    const aborts = abortsWithOutcome(events, service);
    const masked = aborts.filter((a) => callSucceeded(a.outcome)).length;
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
    const back = events.find((r) => r.type === 'outlier.restored' && r.sidecar === e.sidecar && r.service === e.service && r.endpoint === e.endpoint && r.time >= e.time);
    return {
      service: String(e.service),
      endpoint: String(e.endpoint),
      sidecar: String(e.sidecar),
      ejectedAt: e.time,
      restoredAt: back?.time ?? null,
      detector: typeof e.detector === 'string' ? e.detector : null,
      reason: String(e.reason ?? ''),
      figures: (e.figures as Record<string, number> | undefined) ?? {},
    };
  });
  const recovered = hypotheses.filter((h) => h.kind === 'recovers');
  const recovery = experiment.expect.flatMap((e, i) => (e.recovers ? [{ service: e.recovers.service, afterMs: parseMs(recovered.find((h) => h.id === `expect[${i}]`)?.measured) }] : []));
  const retryTimeline = retriesOverTime(events, edges);
  const breakerTimeline = events.filter((e) => e.type === 'breaker.state').map((e) => ({ service: String(e.service), t: e.time, state: e.to as 'closed' | 'open' | 'half-open' }));
  void faultWindows;
  void journal;
  return { retries, breakers, ejections, recovery, retryTimeline, breakerTimeline };
}

/**
 * The resilience score: each hypothesis earns its kind's weight when it passes, half when it is
 * inconclusive, nothing when it fails; the score is the share of the weights earned, 0–100. Hypotheses
 * not run are left out, and a run that injected no fault has no score: it tested nothing.
 */
function scoreOf(hypotheses: readonly HypothesisVerdict[], windows: readonly AnalysisWindow[]): Score {
  if (!windows.some((w) => w.kind === 'fault')) return { value: null, reason: 'no fault was injected', parts: [] };
  const scored = hypotheses.filter((h) => h.outcome !== 'not-run');
  const kinds = [...new Set(scored.map((h) => h.kind))];
  const parts = kinds.map((kind) => {
    const of = scored.filter((h) => h.kind === kind);
    const weight = SCORE_WEIGHTS[kind] ?? 1;
    const earned = of.reduce((s, h) => s + (h.outcome === 'pass' ? 1 : h.outcome === 'inconclusive' ? 0.5 : 0), 0);
    return { kind, weight, passed: of.filter((h) => h.outcome === 'pass').length, total: of.length, points: weight * earned };
  });
  const possible = parts.reduce((s, p) => s + p.weight * p.total, 0);
  return { value: possible === 0 ? 0 : Math.round((1000 * parts.reduce((s, p) => s + p.points, 0)) / possible) / 10, reason: null, parts };
}

async function regression(dir: string, score: Score, hypotheses: readonly HypothesisVerdict[], stats: readonly ServiceStats[], experiment: Experiment): Promise<Regression | null> {
  const parent = dirname(dir);
  const siblings = (await readdir(parent).catch(() => [] as string[])).filter((d) => d < basename(dir)).sort().reverse().slice(0, 5);
  const previous: { dir: string; startedAt: number; outcome: string | null; score: number | null; report: { hypotheses: HypothesisVerdict[]; services: ServiceStats[] } }[] = [];
  for (const name of siblings) {
    try {
      const report = JSON.parse(await readFile(join(parent, name, 'report.json'), 'utf8')) as { experiment: { startedAt: number; outcome: string | null }; score: { value: number | null }; hypotheses: HypothesisVerdict[]; services: ServiceStats[] };
      previous.push({ dir: join(parent, name), startedAt: report.experiment.startedAt, outcome: report.experiment.outcome, score: report.score.value, report });
    } catch {
      // a run without a report (killed, or older): not compared
    }
  }
  if (previous.length === 0) return null;
  const last = previous[0]!;
  const worse: string[] = [];
  if (score.value !== null && last.score !== null && score.value < last.score) worse.push(`score ${score.value} < ${last.score} in the previous run`);
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
  const figures = (rs: LoadRecord[]) => ({ requests: rs.length, availability: ratio(rs.filter((r) => callSucceeded(r)).length, rs.length), p99: latencyOf(rs.filter((r) => r.status > 0).map((r) => r.latencyMs)).p99 });
  const availabilityTest = twoProportions(exp.filter((r) => callSucceeded(r)).length, exp.length, ctl.filter((r) => callSucceeded(r)).length, ctl.length);
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



function parseMs(text: string | undefined): number | null {
  const match = text === undefined ? null : /^(\d+) ms/.exec(text);
  return match ? Number(match[1]) : null;
}

export { methodLength };
