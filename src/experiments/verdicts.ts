// First verdicts of a run, from its recording alone (the load generator's records and the mesh's
// events): each steady-state hypothesis per window (baseline, method, recovery) and each `expect`
// entry, pass / fail / inconclusive, with the measured value and the objective. The analysis issue
// builds the full report on the same recording.
import { percentile, callSucceeded, succeeded } from '../measures.ts';
import { isSample, type LoadRecord } from './load.ts';
import type { ExpectConfig, Experiment, SteadyStateConfig } from './spec.ts';

export type Outcome = 'pass' | 'fail' | 'inconclusive';

export interface Window {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

export interface Verdict {
  readonly hypothesis: string;
  readonly window: string;
  readonly outcome: Outcome;
  readonly measured: string;
  readonly objective: string;
  readonly samples: number;
}

/** What the verdicts read: records and events with their wall-clock times, and when faults acted. */
export interface Recording {
  readonly entry: string | undefined;
  readonly load: readonly LoadRecord[];
  readonly events: readonly Record<string, unknown>[];
  /** Per fault: when it was injected and removed, and the services it targets. */
  readonly faults: readonly { id: string; injectedAt: number; removedAt: number | null; targets: string[] }[];
  readonly rollbackAt: number | null;
  /** Experiment-cohort records only, when the experiment uses a cohort. */
  readonly cohort: boolean;
}

const MIN_SAMPLES = 20;

/**
 * Outcomes (status, latency) of requests to `service` in a window: the load's for the entry (its samples
 * only: not the requests the load cut at its stop, nor its missed starts), else callers' request.done.
 */
export function samplesFor(recording: Recording, service: string, window: Window, cohort: LoadRecord['cohort'] | 'any' = 'any'): { t: number; status: number; grpcStatus?: number | null; latencyMs: number }[] {
  if (service === recording.entry) {
    return recording.load
      .filter((r) => isSample(r) && r.t >= window.from && r.t < window.to && (cohort === 'any' || r.cohort === cohort))
      .map((r) => ({ t: r.t, status: r.status, latencyMs: r.latencyMs }));
  }
  return recording.events
    .filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.service === service && (e.time as number) >= window.from && (e.time as number) < window.to)
    .map((e) => ({ t: e.time as number, status: e.status as number, grpcStatus: (e.grpcStatus as number | null | undefined) ?? null, latencyMs: e.durationMs as number }));
}

export function availability(samples: readonly { status: number; grpcStatus?: number | null }[]): number {
  return samples.length === 0 ? NaN : (100 * samples.filter((s) => callSucceeded(s)).length) / samples.length;
}

export function latencyPercentile(samples: readonly { latencyMs: number }[], p: number): number {
  return percentile(samples.map((s) => s.latencyMs).sort((a, b) => a - b), p);
}

export function steadyStateVerdict(h: SteadyStateConfig, recording: Recording, window: Window): Verdict {
  const cohort = recording.cohort && window.name !== 'baseline' ? 'experiment' : 'any';
  const service = (h.availability ?? h.latency ?? h.errorBudgetBurn)!.service;
  const outcomes = samplesFor(recording, service, window, cohort);
  // Latency is measured on responses; availability and burn count failures without one too.
  const samples = h.latency ? outcomes.filter((s) => s.status > 0) : outcomes;
  const { hypothesis, objective, holds, measured } = measure(h, samples);
  if (samples.length === 0) return { hypothesis, window: window.name, samples: 0, measured: noSamples(service, outcomes.length, recording), objective, outcome: 'inconclusive' };
  return verdict(hypothesis, window, samples.length, holds, measured, objective);
}

function measure(h: SteadyStateConfig, samples: readonly { status: number; latencyMs: number }[]): { hypothesis: string; objective: string; holds: boolean; measured: string } {
  if (h.availability) {
    const value = availability(samples);
    return { hypothesis: `availability of ${h.availability.service} ≥ ${h.availability.min} %`, objective: `≥ ${h.availability.min} %`, holds: value >= h.availability.min, measured: `${value.toFixed(2)} %` };
  }
  if (h.latency) {
    const value = latencyPercentile(samples, h.latency.percentile);
    return { hypothesis: `p${h.latency.percentile} latency of ${h.latency.service} < ${h.latency.max} ms`, objective: `< ${h.latency.max} ms`, holds: value < h.latency.max, measured: `${value.toFixed(1)} ms` };
  }
  const b = h.errorBudgetBurn!;
  const burn = (100 - availability(samples)) / (100 - b.slo);
  return { hypothesis: `error-budget burn of ${b.service} against ${b.slo} % ≤ ${b.max}`, objective: `≤ ${b.max}`, holds: burn <= b.max, measured: burn.toFixed(2) };
}

/** Why a window holds no sample of a service: what an inconclusive verdict says instead of a NaN. */
function noSamples(service: string, failed: number, recording: Recording): string {
  if (failed > 0) return `no response from ${service}: all ${failed} requests in this window failed without one`;
  if (service === recording.entry) {
    return `no request reached ${service}: the load recorded no response and no error in this window (it could not connect, or its connections were refused: a listener that takes only mTLS refuses plaintext)`;
  }
  return `no request to ${service} in this window: no caller's sidecar recorded one`;
}

function verdict(hypothesis: string, window: Window, samples: number, holds: boolean, measured: string, objective: string): Verdict {
  return { hypothesis, window: window.name, samples, measured, objective, outcome: samples < MIN_SAMPLES ? 'inconclusive' : holds ? 'pass' : 'fail' };
}

type RecordedEvent = Readonly<Record<string, unknown>>;

/**
 * Each abort injected into a try to `service`, with the call it hit: the caller's own outbound
 * request.done (the same sidecar, request and destination) — where one request called `service` more
 * than once, the call the fault went into (its `faults`). Matched by the request id alone, another call
 * of the same request was taken for it (cart's call to stock judged the abort on cart's call to
 * payments). Aborts whose call has no request.done (the recording ended first) are left out.
 */
export function abortsWithOutcome<E extends RecordedEvent>(events: readonly E[], service: string): { abort: E; outcome: E }[] {
  const calls = new Map<string, E[]>();
  for (const ev of events) {
    if (ev.type !== 'request.done' || ev.direction !== 'outbound' || ev.service !== service) continue;
    const key = `${String(ev.sidecar)}\u0000${String(ev.requestId)}`;
    const list = calls.get(key);
    if (list) list.push(ev);
    else calls.set(key, [ev]);
  }
  const judged: { abort: E; outcome: E }[] = [];
  for (const ev of events) {
    if (ev.type !== 'fault.applied' || ev.point !== 'attempt' || ev.destination !== service || ev.action !== 'abort') continue;
    const candidates = calls.get(`${String(ev.sidecar)}\u0000${String(ev.requestId)}`);
    if (!candidates) continue;
    const outcome = candidates.find((c) => Array.isArray(c.faults) && (c.faults as unknown[]).includes(ev.faultId)) ?? candidates[0]!;
    judged.push({ abort: ev, outcome });
  }
  return judged;
}

export function expectVerdict(e: ExpectConfig, experiment: Experiment, recording: Recording, method: Window): Verdict {
  const events = recording.events;
  const at = (name: string, from: number, to: number) => ({ name, from, to });
  if (e.retriesMask) {
    const service = e.retriesMask.service;
    const judged = abortsWithOutcome(events, service);
    const masked = judged.filter((j) => callSucceeded(j.outcome)).length;
    const share = judged.length === 0 ? NaN : (100 * masked) / judged.length;
    return { hypothesis: `retries mask ≥ ${e.retriesMask.min} % of aborts on ${service}`, window: 'method', samples: judged.length, measured: `${share.toFixed(1)} % (${masked} of ${judged.length})`, objective: `≥ ${e.retriesMask.min} %`, outcome: judged.length < 5 ? 'inconclusive' : share >= e.retriesMask.min ? 'pass' : 'fail' };
  }
  if (e.breaker) {
    const service = e.breaker.service;
    const faults = recording.faults.filter((f) => f.targets.includes(service));
    if (faults.length === 0) return { hypothesis: `breaker on ${service}`, window: 'method', samples: 0, measured: 'no fault targeted it', objective: '-', outcome: 'inconclusive' };
    const start = Math.min(...faults.map((f) => f.injectedAt));
    const end = Math.max(...faults.map((f) => f.removedAt ?? recording.rollbackAt ?? method.to));
    const transitions = events.filter((ev) => ev.type === 'breaker.state' && ev.service === service);
    const opened = transitions.find((ev) => ev.to === 'open' && (ev.time as number) >= start);
    const closed = transitions.find((ev) => ev.to === 'closed' && (ev.time as number) >= end);
    const parts: string[] = [];
    let holds = true;
    if (e.breaker.opensWithin !== undefined) {
      const ms = opened ? (opened.time as number) - start : Infinity;
      parts.push(`opened ${opened ? `${ms} ms after the fault` : 'never'}`);
      holds &&= ms <= e.breaker.opensWithin;
    }
    if (e.breaker.closesWithin !== undefined) {
      const ms = closed ? (closed.time as number) - end : Infinity;
      parts.push(`closed ${closed ? `${ms} ms after it ended` : 'not after it ended'}`);
      holds &&= ms <= e.breaker.closesWithin;
    }
    return { hypothesis: `breaker on ${service} opens/closes in time`, window: 'method', samples: transitions.length, measured: parts.join(', '), objective: [e.breaker.opensWithin !== undefined && `opens ≤ ${e.breaker.opensWithin} ms`, e.breaker.closesWithin !== undefined && `closes ≤ ${e.breaker.closesWithin} ms`].filter(Boolean).join(', '), outcome: holds ? 'pass' : 'fail' };
  }
  if (e.outlierEjects) {
    const service = e.outlierEjects.service;
    const faults = recording.faults.filter((f) => f.targets.includes(service));
    const start = faults.length ? Math.min(...faults.map((f) => f.injectedAt)) : method.from;
    const ejected = events.find((ev) => ev.type === 'outlier.ejected' && ev.service === service && (ev.time as number) >= start);
    const ms = ejected ? (ejected.time as number) - start : Infinity;
    return { hypothesis: `outlier detection ejects an endpoint of ${service}`, window: 'method', samples: ejected ? 1 : 0, measured: ejected ? `${ms} ms after the fault` : 'never', objective: `≤ ${e.outlierEjects.within} ms`, outcome: ms <= e.outlierEjects.within ? 'pass' : 'fail' };
  }
  const r = e.recovers!;
  const from = recording.rollbackAt ?? method.to;
  const bounds = experiment.steadyState.filter((h) => (h.availability ?? h.latency ?? h.errorBudgetBurn)!.service === r.service);
  // The first second from which every later one-second bucket meets the service's steady state.
  const end = Math.max(from, ...recording.load.map((l) => l.t));
  let recoveredAt: number | undefined;
  for (let t = from; t + 1_000 <= end; t += 1_000) {
    const ok = bounds.every((h) => steadyStateVerdict(h, { ...recording, cohort: false }, at('bucket', t, t + 1_000)).outcome !== 'fail');
    if (ok && recoveredAt === undefined) recoveredAt = t;
    if (!ok) recoveredAt = undefined;
  }
  const ms = recoveredAt === undefined ? Infinity : recoveredAt - from;
  return { hypothesis: `${r.service} back to steady state after rollback`, window: 'recovery', samples: bounds.length, measured: recoveredAt === undefined ? 'not within the recording' : `${ms} ms`, objective: `≤ ${r.within} ms`, outcome: bounds.length === 0 ? 'inconclusive' : ms <= r.within ? 'pass' : 'fail' };
}
