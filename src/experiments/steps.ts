// A method step's fault as the control plane gets it: the run's seed, the cohort header when the
// experiment has one, its experiment named (so other runs see who holds the target), durations back in
// the text form the fault API reads, and a ramped step's percent at a given moment.
import { COHORT_VALUE } from './load.ts';
import type { Experiment, StepConfig } from './spec.ts';

/** The fault as the control plane gets it: the run's seed, the cohort header when the experiment has one, its experiment named. */
export function faultBody(experiment: Experiment, step: StepConfig, seed: number, percent?: number): Record<string, unknown> {
  const fault = step.fault as Record<string, unknown> & { match: { headers?: Record<string, unknown> } };
  const cohort = experiment.load.cohort;
  return {
    ...fault,
    description: `experiment:${experiment.name}`,
    seed,
    ...(percent !== undefined && { percent }),
    ...(cohort && { match: { ...fault.match, headers: { ...fault.match.headers, [cohort.header]: { exact: COHORT_VALUE } } } }),
    // Durations went through the schema as milliseconds: send them back as such.
    ...durationsAsText(fault),
  };
}

/** The schema turned durations into numbers; the fault API wants "250ms" strings again. */
function durationsAsText(fault: Record<string, unknown>): Record<string, unknown> {
  const ms = (v: unknown) => (typeof v === 'number' ? `${v}ms` : v);
  const out: Record<string, unknown> = {};
  const delay = fault.delay as Record<string, unknown> | undefined;
  if (delay) {
    const d: Record<string, unknown> = { ...delay };
    if (d.fixed !== undefined) d.fixed = ms(d.fixed);
    if (d.max !== undefined) d.max = ms(d.max);
    for (const key of ['uniform', 'normal', 'lognormal', 'pareto'] as const) {
      const dist = d[key] as Record<string, unknown> | undefined;
      if (dist) d[key] = Object.fromEntries(Object.entries(dist).map(([k, v]) => [k, key === 'pareto' && k === 'shape' ? v : ms(v)]));
    }
    out.delay = d;
  }
  const slicer = fault.slicer as Record<string, unknown> | undefined;
  if (slicer) out.slicer = { ...slicer, delay: ms(slicer.delay) };
  const tcp = fault.tcp as Record<string, Record<string, unknown> | string> | undefined;
  if (tcp) {
    const t: Record<string, unknown> = { ...tcp };
    for (const key of ['latency', 'resetPeer', 'timeout', 'slicer'] as const) {
      const toxic = tcp[key] as Record<string, unknown> | undefined;
      if (toxic) t[key] = Object.fromEntries(Object.entries(toxic).map(([k, v]) => [k, ['latency', 'jitter', 'after', 'delay'].includes(k) ? ms(v) : v]));
    }
    out.tcp = t;
  }
  return out;
}

/** A ramped step's percent `elapsed` ms into it: from `from` up to the fault's, in even steps. */
export function rampPercent(step: StepConfig, elapsed: number): number | undefined {
  if (!step.ramp) return undefined;
  const steps = Math.max(1, Math.floor(step.duration / step.ramp.every));
  const done = Math.min(steps, Math.floor(Math.max(0, elapsed) / step.ramp.every));
  return step.ramp.from + ((step.fault.percent - step.ramp.from) * done) / steps;
}

