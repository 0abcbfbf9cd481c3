// A method step's fault as the control plane gets it: the run's seed, the cohort header when the
// experiment has one, its experiment named (so other runs see who holds the target), durations back in
// the text form the fault API reads, and a ramped step's percent at a given moment.
import { definitionOf } from '../faults/actions/index.ts';
import type { FaultConfig } from '../faults/schema.ts';
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
    ...durationsAsText(step.fault),
  };
}

/** The schema turned durations into numbers; the fault API wants "250ms" strings again: the action says which. */
function durationsAsText(fault: FaultConfig): Record<string, unknown> {
  const { name, durations = [] } = definitionOf(fault);
  if (durations.length === 0) return {};
  return { [name]: durations.reduce((settings, path) => asText(settings, path.split('.')), (fault as Record<string, unknown>)[name]) };
}

/** The value at `path` as "Nms" when it is a number, the objects along it copied. */
function asText(value: unknown, path: readonly string[]): unknown {
  if (path.length === 0) return typeof value === 'number' ? `${value}ms` : value;
  if (typeof value !== 'object' || value === null) return value;
  const [key, ...rest] = path as [string, ...string[]];
  const object = value as Record<string, unknown>;
  return key in object ? { ...object, [key]: asText(object[key], rest) } : object;
}

/** A ramped step's percent `elapsed` ms into it: from `from` up to the fault's, in even steps. */
export function rampPercent(step: StepConfig, elapsed: number): number | undefined {
  if (!step.ramp) return undefined;
  const steps = Math.max(1, Math.floor(step.duration / step.ramp.every));
  const done = Math.min(steps, Math.floor(Math.max(0, elapsed) / step.ramp.every));
  return step.ramp.from + ((step.fault.percent - step.ramp.from) * done) / steps;
}

