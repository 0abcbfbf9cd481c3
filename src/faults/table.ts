// The faults in force on one sidecar: those of the config (replaced whenever a snapshot is applied)
// and runtime ones (PUT /faults/:id), each under a lease that the sidecar enforces by itself — an
// expired fault is dropped on time even if whoever installed it (a runner, the control plane) died.
// Limits from the config's `faultInjection` are checked before a fault is accepted.
import { ErrorCode, FaultlineError } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import { ActiveFault, type FaultCounter, type Point, type Slot } from './active.ts';
import type { FaultConfig, FaultInjectionConfig } from './schema.ts';

export class FaultLimitError extends FaultlineError {
  constructor(message: string) {
    super(ErrorCode.FaultLimit, message);
  }
}

type RemovalReason = 'deleted' | 'expired' | 'replaced' | 'config';

export class FaultTable {
  readonly #events: EventBus;
  readonly #settings: () => FaultInjectionConfig;
  #config: ActiveFault[] = [];
  readonly #runtime = new Map<string, ActiveFault>();
  /** Config faults' counters by definition, so that a reload that leaves a fault alone keeps its sequence. */
  #configCounters = new Map<string, FaultCounter>();
  #byPoint = new Map<Point, readonly ActiveFault[]>();
  /** Per slot, the faults that can match a destination (those naming it, and those naming none), in order. */
  #byDestination = new Map<Slot, { named: ReadonlyMap<string, readonly ActiveFault[]>; any: readonly ActiveFault[] }>();
  #all: readonly ActiveFault[] = [];
  #sweep: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(events: EventBus, settings: () => FaultInjectionConfig) {
    this.#events = events;
    this.#settings = settings;
    this.#index();
  }

  /** The faults acting at a point, in order: config ones first, then runtime ones by install time. */
  at(point: Point): readonly ActiveFault[] {
    return this.#byPoint.get(point)!;
  }

  /** The faults in a slot that can match calls to `destination`: the hot path's only lookup. */
  for(slot: Slot, destination: string): readonly ActiveFault[] {
    const index = this.#byDestination.get(slot)!;
    return index.named.get(destination) ?? index.any;
  }

  all(): readonly ActiveFault[] {
    return this.#all;
  }

  get(id: string): ActiveFault | undefined {
    return this.#all.find((f) => f.id === id);
  }

  /**
   * The partition, if any, that cuts `source` from `destination` for a health check now. Probes do
   * not take part in the reproducible request sequence: a partition under 100 % fails each probe with
   * its percentage as probability, drawn here.
   */
  partitionFor(source: string, destination: string): ActiveFault | undefined {
    const input = { source, destination, route: undefined, method: 'GET', path: '/', headers: {} };
    for (const fault of this.#byPoint.get('attempt')!) {
      if (fault.spec.partition && !fault.expired && fault.matches(input) && Math.random() * 100 < fault.spec.percent) return fault;
    }
    return undefined;
  }

  /** Called after every change (install, removal, expiry, config). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the config's faults with these (a snapshot was applied). */
  setConfigFaults(specs: readonly FaultConfig[]): void {
    const now = Date.now();
    const counters = new Map<string, FaultCounter>();
    const kept = new Map(this.#config.map((f) => [definition(f.spec), f]));
    const next = specs.map((spec) => {
      const key = definition(spec);
      const same = kept.get(key);
      kept.delete(key);
      const counter = this.#configCounters.get(key) ?? { matched: 0, applied: 0 };
      counters.set(key, counter);
      if (same) return same;
      const fault = new ActiveFault(spec, 'config', leaseEnd(spec, now), counter);
      this.#installed(fault);
      return fault;
    });
    for (const gone of kept.values()) this.#removed(gone, 'config');
    this.#config = next;
    this.#configCounters = counters;
    this.#changed();
  }

  /**
   * Installs (or replaces) a runtime fault under a lease: its ttl or expiresAt, else the default
   * ttl; never longer than the maximum. Throws FaultLimitError when a limit refuses it.
   */
  put(spec: FaultConfig): ActiveFault {
    const settings = this.#settings();
    if (this.#config.some((f) => f.id === spec.id)) {
      throw new FaultLimitError(`fault "${spec.id}" is declared in the mesh config; change it there, or use another id`);
    }
    if (spec.percent > settings.maxPercent) {
      throw new FaultLimitError(`percent ${spec.percent} is over the limit faultInjection.maxPercent (${settings.maxPercent})`);
    }
    const replacing = this.#runtime.get(spec.id);
    const active = this.#config.length + this.#runtime.size - (replacing ? 1 : 0);
    if (active >= settings.maxActive) {
      throw new FaultLimitError(`${active} faults are active, the limit faultInjection.maxActive (${settings.maxActive}): delete one first`);
    }
    const now = Date.now();
    const ttl = spec.expiresAt !== undefined ? Date.parse(spec.expiresAt) - now : (spec.ttl ?? settings.defaultTtl);
    if (ttl <= 0) {
      throw new FaultLimitError(spec.expiresAt !== undefined
        ? `expiresAt: ${spec.expiresAt} has already passed; a lease must end in the future`
        : 'faultInjection.defaultTtl: must be above 0 for a fault that names no ttl');
    }
    if (ttl > settings.maxTtl) {
      throw new FaultLimitError(`a lease of ${ttl} ms is over the limit faultInjection.maxTtl (${settings.maxTtl} ms)`);
    }
    if (replacing && definition(withoutLease(replacing.spec)) === definition(withoutLease(spec))) {
      // The same fault with a new lease (a runner renewing it): extended in place, its decisions go on.
      replacing.expiresAt = now + ttl;
      this.#changed();
      return replacing;
    }
    const fault = new ActiveFault(spec, 'runtime', now + ttl);
    if (replacing) this.#removed(replacing, 'replaced');
    this.#runtime.delete(spec.id);
    this.#runtime.set(spec.id, fault);
    this.#installed(fault);
    this.#changed();
    return fault;
  }

  /**
   * Makes the runtime faults exactly `specs` (a control plane's snapshot), each with its absolute lease:
   * new ones installed, changed ones replaced, unchanged ones kept (with their counters), any other
   * runtime fault removed — whoever put it. A fault a limit refuses is skipped and reported.
   */
  sync(specs: readonly FaultConfig[]): { installed: string[]; removed: string[]; refused: { id: string; error: string }[] } {
    const result = { installed: [] as string[], removed: [] as string[], refused: [] as { id: string; error: string }[] };
    const wanted = new Set(specs.map((s) => s.id));
    for (const id of [...this.#runtime.keys()]) if (!wanted.has(id) && this.delete(id)) result.removed.push(id);
    for (const spec of specs) {
      const current = this.#runtime.get(spec.id);
      const lease = spec.expiresAt === undefined ? undefined : Date.parse(spec.expiresAt);
      if (current && definition(withoutLease(current.spec)) === definition(withoutLease(spec)) && current.expiresAt === lease) continue;
      try {
        this.put(spec);
        result.installed.push(spec.id);
      } catch (error) {
        result.refused.push({ id: spec.id, error: (error as Error).message });
      }
    }
    return result;
  }

  /** Removes a runtime fault; false when there is none by that id. */
  delete(id: string): boolean {
    const fault = this.#runtime.get(id);
    if (!fault) return false;
    this.#runtime.delete(id);
    this.#removed(fault, 'deleted');
    this.#changed();
    return true;
  }

  /** Removes every runtime fault at once; returns their ids. */
  deleteAll(): string[] {
    const ids = [...this.#runtime.keys()];
    const faults = [...this.#runtime.values()];
    this.#runtime.clear();
    for (const fault of faults) this.#removed(fault, 'deleted');
    this.#changed();
    return ids;
  }

  close(): void {
    clearTimeout(this.#sweep);
    for (const fault of [...this.#runtime.values(), ...this.#config]) fault.removed.cancel(undefined);
  }

  #installed(fault: ActiveFault): void {
    this.#events.emit('fault.installed', {
      faultId: fault.id,
      action: fault.actionName,
      origin: fault.origin,
      expiresAt: fault.expiresAt === undefined ? null : new Date(fault.expiresAt).toISOString(),
    });
  }

  #removed(fault: ActiveFault, reason: RemovalReason): void {
    fault.removed.cancel(undefined);
    this.#events.emit('fault.removed', { faultId: fault.id, origin: fault.origin, reason, applied: fault.counter.applied });
  }

  #changed(): void {
    this.#index();
    this.#schedule();
    for (const listener of this.#listeners) listener();
  }

  #index(): void {
    this.#all = Object.freeze([...this.#config, ...this.#runtime.values()]);
    for (const point of ['request', 'attempt', 'inbound'] as const) this.#byPoint.set(point, Object.freeze(this.#all.filter((f) => f.points.has(point))));
    for (const slot of ['request', 'attempt', 'endpoint', 'inbound'] as const) {
      const faults = Object.freeze(this.#all.filter((f) => f.slots.has(slot)));
      const names = new Set(faults.flatMap((f) => f.destinations ?? []));
      const any = Object.freeze(faults.filter((f) => f.destinations === undefined));
      const named = new Map([...names].map((name) => [name, Object.freeze(faults.filter((f) => f.destinations === undefined || f.destinations.includes(name)))]));
      this.#byDestination.set(slot, { named, any });
    }
  }

  /** One timer, for the next lease to end. */
  #schedule(): void {
    clearTimeout(this.#sweep);
    const ends = this.#all.map((f) => f.expiresAt).filter((t) => t !== undefined);
    if (ends.length === 0) return;
    const wait = Math.max(0, Math.min(...ends) - Date.now());
    this.#sweep = setTimeout(() => this.#expire(), Math.min(wait, 2 ** 31 - 1)).unref();
  }

  #expire(): void {
    const now = Date.now();
    let any = false;
    for (const [id, fault] of this.#runtime) {
      if (fault.expiresAt! <= now) {
        this.#runtime.delete(id);
        this.#removed(fault, 'expired');
        any = true;
      }
    }
    const live = this.#config.filter((f) => f.expiresAt === undefined || f.expiresAt > now);
    for (const fault of this.#config) if (!live.includes(fault)) (this.#removed(fault, 'expired'), (any = true));
    this.#config = live;
    if (any) this.#changed();
    else this.#schedule();
  }
}

function withoutLease(spec: FaultConfig): FaultConfig {
  const { ttl: _ttl, expiresAt: _expiresAt, ...rest } = spec;
  return rest;
}

function definition(spec: FaultConfig): string {
  return JSON.stringify(spec);
}

/** A config fault's lease, if it has one, counts from when the config is applied. */
function leaseEnd(spec: FaultConfig, now: number): number | undefined {
  if (spec.expiresAt !== undefined) return Date.parse(spec.expiresAt);
  return spec.ttl === undefined ? undefined : now + spec.ttl;
}
