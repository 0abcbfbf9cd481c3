// The HTTP fault actions, one module each. An action first plans an injection (draws what it will do
// from the decision's random source, so the plan is reproducible and can be reported), then runs the
// request with the fault in it. tcp faults are not HTTP actions: the sidecar's tcp listeners apply them.
import type { Handler, ProxyResponse, RequestContext } from '../../http/types.ts';
import type { ActiveFault, Point } from '../active.ts';
import type { FaultConfig } from '../schema.ts';
import { abortAction } from './abort.ts';
import { bandwidthAction } from './bandwidth.ts';
import { delayAction } from './delay.ts';
import { hangAction } from './hang.ts';
import { partitionAction } from './partition.ts';
import { slicerAction } from './slicer.ts';

export type Plan = Record<string, string | number | boolean>;

export interface Injection {
  readonly fault: ActiveFault;
  readonly point: Point;
  readonly plan: Plan;
}

export interface FaultAction {
  readonly name: string;
  plan(random: () => number): Plan;
  run(ctx: RequestContext, next: Handler, injection: Injection): Promise<ProxyResponse>;
}

export function actionOf(spec: FaultConfig): FaultAction | undefined {
  if (spec.delay) return delayAction(spec.delay);
  if (spec.abort) return abortAction(spec.abort);
  if (spec.partition) return partitionAction(spec.partition);
  if (spec.bandwidth) return bandwidthAction(spec.bandwidth);
  if (spec.slicer) return slicerAction(spec.slicer);
  if (spec.hang) return hangAction;
  return undefined;
}
