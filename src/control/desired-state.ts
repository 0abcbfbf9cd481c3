// The desired state every sidecar receives, its version (a hash of its content: every control plane
// sharing a store makes the same one), and the instance deltas of the watch stream: when only
// registered instances changed, a sidecar that asked for deltas is sent the instances that came,
// changed or left since the state it holds, not the whole state again (with a fleet's instances it is
// mostly instances). The sidecar rebuilds the state and checks its version: a mismatch is a broken
// stream, and the full state comes again on the next one.
import { createHash } from 'node:crypto';
import type { RegisteredInstance } from '../config/snapshot.ts';
import type { FaultConfig } from '../faults/schema.ts';

/** What a sidecar receives: everything it needs to run, in one message. */
export interface DesiredState {
  readonly version: string;
  /** The mesh config, as YAML text (parsed and checked again by the sidecar). */
  readonly config: string;
  /** Runtime faults, each with its lease end as `expiresAt`. */
  readonly faults: readonly FaultConfig[];
  /** Instances that registered themselves (sidecars joined with flags), by service and name: endpoints of their services. */
  readonly instances: readonly RegisteredInstance[];
}

/** What the watch stream sends when only instances changed (`event: delta`): from `base` to `version`. */
export interface InstanceDelta {
  readonly version: string;
  readonly base: string;
  /** Instances that came or changed, whole. */
  readonly put: readonly RegisteredInstance[];
  /** Names of instances that left. */
  readonly delete: readonly string[];
}

/** The watch query (`?deltas=instances`) and answer header (`x-faultline-deltas: instances`) that turn deltas on. */
export const DELTAS = 'instances';
export const DELTAS_HEADER = 'x-faultline-deltas';

/** The version of a state: its content's hash; `faults` and `instances` in the order they are sent. */
export function versionOf(config: string, faults: readonly FaultConfig[], instances: readonly RegisteredInstance[]): string {
  return createHash('sha256').update(config).update(JSON.stringify(faults)).update(JSON.stringify(instances)).digest('hex').slice(0, 16);
}

/** Instances in the order states hold them: by service, then name. */
export function byServiceAndName(a: RegisteredInstance, b: RegisteredInstance): number {
  return a.service.localeCompare(b.service) || a.name.localeCompare(b.name);
}

/** The delta from `from` to `to` when only their instances differ; undefined when more changed. */
export function instanceDelta(from: DesiredState, to: DesiredState): InstanceDelta | undefined {
  if (from.config !== to.config || JSON.stringify(from.faults) !== JSON.stringify(to.faults)) return undefined;
  const before = new Map(from.instances.map((i) => [i.name, JSON.stringify(i)]));
  const put = to.instances.filter((i) => before.get(i.name) !== JSON.stringify(i));
  const kept = new Set(to.instances.map((i) => i.name));
  return { version: to.version, base: from.version, put, delete: [...before.keys()].filter((name) => !kept.has(name)) };
}

/** The state a delta makes of `base`; throws when it is not that delta's base, or the result is not its version. */
export function applyDelta(base: DesiredState, delta: InstanceDelta): DesiredState {
  if (delta.base !== base.version) throw new Error(`a delta from ${delta.base} came to a sidecar that holds ${base.version}`);
  const instances = new Map(base.instances.map((i) => [i.name, i]));
  for (const name of delta.delete) instances.delete(name);
  for (const instance of delta.put) instances.set(instance.name, instance);
  const sorted = [...instances.values()].sort(byServiceAndName);
  const version = versionOf(base.config, base.faults, sorted);
  if (version !== delta.version) throw new Error(`a delta to ${delta.version} made ${version}: the watch stream is out of step`);
  return { version, config: base.config, faults: base.faults, instances: sorted };
}
