// The fault actions, one module each, in the order the fault schema lists them. A new action is a
// module and a line here (docs/extending.md): the schema, the sidecar's runtime, the runner's durations,
// the targets and names every part of faultline reads off a fault all derive from this list.
import type { FaultMatchConfig } from '../match.ts';
import { abort } from './abort.ts';
import type { ActionDefinition, FaultAction, Reference } from './action.ts';
import { bandwidth } from './bandwidth.ts';
import { delay } from './delay.ts';
import { hang } from './hang.ts';
import { partition } from './partition.ts';
import { slicer } from './slicer.ts';
import { tcp } from './tcp.ts';

export type { FaultAction, Injection, Plan } from './action.ts';

export const ACTION_DEFINITIONS = [
  delay,
  abort,
  partition,
  bandwidth,
  slicer,
  hang,
  tcp,
] as const;

export type ActionName = (typeof ACTION_DEFINITIONS)[number]['name'];
export const ACTIONS: readonly ActionName[] = ACTION_DEFINITIONS.map((d) => d.name);

/** A fault as read here: a parsed one, or one as a sidecar lists it. */
type FaultLike = { readonly id: string; readonly match?: FaultMatchConfig };

/** The definition of the action a fault names; the schema lets exactly one through. */
export function definitionOf(fault: FaultLike): ActionDefinition {
  const definition = (ACTION_DEFINITIONS as readonly ActionDefinition[]).find((d) => settingsOf(fault, d) !== undefined);
  if (!definition) throw new Error(`fault "${fault.id}" names no action (one of ${ACTIONS.join(', ')})`);
  return definition;
}

const settingsOf = (fault: FaultLike, definition: ActionDefinition): unknown => (fault as Record<string, unknown>)[definition.name];

/** The action's name, as events, metrics and reports give it. */
export function actionName(fault: FaultLike): ActionName {
  return definitionOf(fault).name as ActionName;
}

/** The HTTP runtime of the fault's action; undefined for an L4 action. */
export function actionOf(fault: FaultLike): FaultAction | undefined {
  const definition = definitionOf(fault);
  return definition.layer === 'http' ? definition.create(settingsOf(fault, definition)) : undefined;
}

/** The services a fault touches: its action's targets, else the match's destinations (none: any service). */
export function faultTargets(fault: FaultLike): string[] {
  const definition = definitionOf(fault);
  const match = fault.match ?? {};
  const names = definition.targets ? definition.targets(settingsOf(fault, definition), match) : [match.destination ?? []].flat();
  return [...new Set(names)];
}

/** The names a fault's action refers to, which the config must declare. */
export function actionReferences(fault: FaultLike): Reference[] {
  const definition = definitionOf(fault);
  return definition.references?.(settingsOf(fault, definition)) ?? [];
}
