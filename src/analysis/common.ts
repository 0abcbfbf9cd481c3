// Small pieces the analysis modules share: the event shape, grouping, a method step's targets.
import type { Experiment } from '../experiments/spec.ts';
import { faultTargets } from '../faults/actions/index.ts';

/** A recorded event: its type, wall-clock time and sidecar, and the rest of its payload. */
export type Event = Record<string, unknown> & { type: string; time: number; sidecar: string };

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    let list = map.get(k);
    if (!list) map.set(k, (list = []));
    list.push(item);
  }
  return map;
}

/** The services a method step's fault targets. */
export function targetsOfStep(experiment: Experiment, index: number): string[] {
  return faultTargets(experiment.method[index]!.fault);
}
