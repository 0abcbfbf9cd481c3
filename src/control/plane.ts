import { createHash } from 'node:crypto';
// The control plane's state and its distribution: the desired mesh config (validated, stored), the
// runtime faults under leases (a FaultTable of its own, so limits and expiry are the sidecars' own
// rules), and every subscribed sidecar. Any change makes a new desired state, which goes to every
// subscriber as one full snapshot (config text + faults with absolute lease ends), serialized once
// for all of them; each sidecar acks the version it applied, or the error that stopped it (sidecar-roster.ts).
// Registered instances are kept by instance-registry.ts. When only instances changed, a sidecar that
// takes deltas is sent those alone (desired-state.ts).
import type { ServerResponse } from 'node:http';
import { parseConfig } from '../config/load.ts';
import { compileSnapshot, type RegisteredInstance, type Snapshot } from '../config/snapshot.ts';
import type { FaultConfig } from '../faults/schema.ts';
import { FaultTable } from '../faults/table.ts';
import { EventBus, type MeshEvent } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';
import { DEFAULT_REGISTRATION_TTL_MS, InstanceRegistry, RegistrationConflict, type InstanceRecord } from './instance-registry.ts';
import { SidecarRoster, type SidecarStatus } from './sidecar-roster.ts';
import { instanceDelta, versionOf, type DesiredState } from './desired-state.ts';
import type { Store } from './store.ts';

export { DEFAULT_REGISTRATION_TTL_MS, RegistrationConflict, type InstanceRecord, type SidecarStatus };

export type { DesiredState };

/** Registrations arriving together go out together: one new state per this much time at most. */
const PUBLISH_COALESCE_MS = 25;
/** A stored fault's lease outlives the fault by this much: the key goes after the sidecars ended it. */
const FAULT_LEASE_SLACK_MS = 5_000;

const CONFIG_KEY = 'config.yaml';
const FAULT_PREFIX = 'faults/';
/** On a shared store: the digest of the last --config file text a control plane applied at start. */
const FILE_APPLIED_KEY = 'applied/config-file.sha256';

/**
 * Whether a control plane started with `--config` applies its file: always on its own file store (the
 * file is the operator's word); on a shared store, unless the file is the very one applied before and
 * the store's config has changed since (`PUT /config` on some replica) — a replica restarted with the
 * unchanged file must not take the mesh back to it. An edited file is applied, as `kubectl apply`'s
 * last-applied rule does. Returns the text to apply, or undefined to keep the store's.
 */
async function fileConfigWins(store: Store, file: string, stored: string | undefined, log: Logger): Promise<string | undefined> {
  if (!store.leasesOutliveProcess || stored === undefined || stored === file) return file;
  if ((await store.get(FILE_APPLIED_KEY)) !== digest(file)) return file;
  log.warn({}, "--config's file is unchanged since it was applied and the store's config was changed since (PUT /config): serving the store's");
  return undefined;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class ControlPlane {
  /** Every sidecar's events merged; it keeps more request.done than a sidecar does, being off the data path. */
  readonly events = new EventBus('control', { requests: 10_000, decisions: 10_000 });
  #eventReaders = 0;
  readonly #readersChanged = new Set<() => void>();
  readonly faults: FaultTable;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #registry: InstanceRegistry;
  readonly #roster = new SidecarRoster();
  #configText = '';
  #snapshot!: Snapshot;
  #state!: DesiredState;
  /** The state as every subscriber is sent it: serialized once per version, not once per subscriber. */
  #message!: Buffer;
  /** When only instances changed from the state before: that delta, serialized once, and the version it applies to. */
  #delta: { readonly base: string; readonly message: Buffer } | undefined;
  /** Each watch stream: its sidecar, the version last written to it, and whether its socket is behind. */
  readonly #subscribers = new Map<ServerResponse, Subscriber>();
  #loading = false;
  #unwatchFaults: (() => void) | undefined;
  #unwatchConfig: (() => void) | undefined;
  /** The runtime faults as this control plane last saw them in the store (id → stored JSON). */
  readonly #stored = new Map<string, string>();
  #publishTimer: NodeJS.Timeout | undefined;

  /** The faults' writes to the store, one after another. */
  #persisting: Promise<void> = Promise.resolve();
  /** Per fault, the value this plane last wrote to the store: its echo from the watch is no news. */
  readonly #written = new Map<string, string>();

  private constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.#registry = new InstanceRegistry(store, log);
    this.faults = new FaultTable(this.events, () => this.#snapshot.config.faultInjection);
    this.faults.onChange(() => {
      if (this.#loading) return;
      // One write of the faults at a time, each of the table as it is then: two at once (a renewal's
      // and a delete's) could end with the renewal's put landing after the delete, which would bring
      // the removed fault back from the store until its lease ends.
      this.#persisting = this.#persisting.then(() => this.#persistFaults());
      this.#publish();
    });
  }

  /**
   * Starts from `configText` when given (validated: a bad file refuses to start), else from the
   * stored config; runtime faults come back from the store with their leases (expired ones drop).
   */
  static async open(store: Store, log: Logger, configText?: string, source = 'config'): Promise<ControlPlane> {
    const plane = new ControlPlane(store, log);
    const stored = await store.get(CONFIG_KEY);
    const fromFile = configText === undefined ? undefined : await fileConfigWins(store, configText, stored, log);
    const text = fromFile ?? stored;
    if (text === undefined) throw new Error('no mesh config: give --config, or a state directory that holds one');
    plane.#setConfig(text, fromFile !== undefined ? source : 'the store');
    if (fromFile !== undefined) {
      await store.put(CONFIG_KEY, fromFile);
      if (store.leasesOutliveProcess) await store.put(FILE_APPLIED_KEY, digest(fromFile));
    }
    // The runtime faults in the store (every control plane sharing it wrote there), and from now on every
    // change to them, the config and the instances, whichever control plane made it: the state is the store's.
    for (const [key, value] of await store.entries(FAULT_PREFIX)) await plane.#faultChanged(key, value);
    plane.#unwatchFaults = await store.watch(FAULT_PREFIX, ({ key, value }) => void plane.#faultChanged(key, value));
    plane.#unwatchConfig = await store.watch(CONFIG_KEY, ({ value }) => plane.#configChanged(value));
    await plane.#registry.open(() => plane.#publishSoon());
    plane.#publish();
    return plane;
  }

  /**
   * Registers an instance (or renews its registration with a fresh lease): it is an endpoint of its
   * service for every sidecar until it deregisters or its lease ends. A name another service holds is
   * refused: names are unique in the mesh.
   */
  async register(instance: RegisteredInstance, ttlMs = DEFAULT_REGISTRATION_TTL_MS): Promise<InstanceRecord> {
    const taken = this.snapshot.sidecars.find((s) => s.name === instance.name && s.service !== instance.service);
    if (taken) throw new RegistrationConflict(`"${instance.name}" is a sidecar of service ${taken.service} in the mesh file`);
    return this.#registry.register(instance, ttlMs);
  }

  /** Renews an instance's lease; false when it has ended (the instance must register again). */
  renew(name: string, leaseId: string): Promise<boolean> {
    return this.#registry.renew(name, leaseId);
  }

  /** An instance leaves at once (a clean stop). */
  async deregister(name: string): Promise<boolean> {
    if (!(await this.#registry.deregister(name))) return false;
    this.#publish();
    return true;
  }

  instances(): InstanceRecord[] {
    return [...this.#registry.all()];
  }

  instance(name: string): InstanceRecord | undefined {
    return this.#registry.get(name);
  }

  /** Whether `service` has registered instances. */
  hasInstancesOf(service: string): boolean {
    return this.#registry.hasService(service);
  }

  get state(): DesiredState {
    return this.#state;
  }

  /**
   * Someone reads the merged stream (a game day's recorder): while anyone does, the sidecars' request.done
   * are collected too; otherwise only their decisions, and the sidecars do not pay for serializing an
   * event per request that nobody reads. Returns the function that says the reader left.
   */
  attachEventReader(): () => void {
    this.#eventReaders++;
    this.#readersChangedNow();
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.#eventReaders--;
      this.#readersChangedNow();
    };
  }

  /** Readers came or left: every sidecar is told over its watch stream whether to send request.done. */
  #readersChangedNow(): void {
    for (const changed of this.#readersChanged) changed();
    for (const res of this.#subscribers.keys()) sendCollect(res, this.collectsRequests);
  }

  /**
   * A sidecar's uplink opened (its events pushed to this control plane, so that nothing depends on
   * reaching its admin listener on its host): returns the function that says it closed. Where it should
   * resume is lastSeqOf.
   */
  uplinkOpened(sidecar: string, requests: boolean): () => void {
    return this.#roster.uplinkOpened(sidecar, requests);
  }

  /** The last event of a sidecar this plane has merged (0: none, or when the sidecar restarted and numbers from 1 again). */
  lastSeqOf(sidecar: string): number {
    return this.#roster.lastSeqOf(sidecar);
  }

  /** An event a sidecar pushed: merged into the one stream. */
  relayFrom(sidecar: string, event: MeshEvent): void {
    // Metric samples are numbered apart (seq 0): where its events resume is not theirs to say.
    if (event.type !== 'metrics.sample') this.#roster.eventMerged(sidecar, event.seq);
    this.events.relay(event);
  }

  /**
   * Resolves once every connected sidecar's request.done flow in — each has an uplink open that takes
   * them — or after `ms`: a sidecar keeps request.done only while read, so a recorder that starts its
   * load before then would miss the first ones.
   */
  requestsFlowing(ms: number): Promise<void> {
    return this.#roster.requestsFlowing(ms);
  }

  /** Whether request.done is being collected: someone reads the merged stream. */
  get collectsRequests(): boolean {
    return this.#eventReaders > 0;
  }

  onEventReaders(changed: () => void): () => void {
    this.#readersChanged.add(changed);
    return () => this.#readersChanged.delete(changed);
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  get configText(): string {
    return this.#configText;
  }

  /** Validates and stores a new config, then sends it to every sidecar. Throws ConfigError, changing nothing. */
  async putConfig(text: string, source: string): Promise<DesiredState> {
    const snapshot = compileSnapshot(parseConfig(text, source), source);
    await this.#store.put(CONFIG_KEY, text);
    this.#configText = text;
    this.#snapshot = snapshot;
    this.#publish();
    return this.#state;
  }

  /**
   * A sidecar's watch stream: the current state at once, then every new one — as a delta of its
   * instances when only they changed and it takes deltas (`deltas`), else whole.
   */
  subscribe(sidecar: string, res: ServerResponse, { deltas = false }: { deltas?: boolean } = {}): void {
    const subscriber: Subscriber = { sidecar, deltas, sent: undefined, behind: false };
    this.#subscribers.set(res, subscriber);
    const status = this.#roster.status(sidecar);
    status.connected = true;
    status.connectedAt = new Date().toISOString();
    this.#log.info({ sidecar }, 'sidecar subscribed');
    this.#send(res, subscriber);
    sendCollect(res, this.collectsRequests);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000).unref();
    res.once('close', () => {
      clearInterval(heartbeat);
      this.#subscribers.delete(res);
      if (![...this.#subscribers.values()].some((other) => other.sidecar === sidecar)) {
        status.connected = false;
        status.disconnectedAt = new Date().toISOString();
        this.#log.info({ sidecar }, 'sidecar disconnected');
      }
    });
  }

  acknowledge(sidecar: string, version: string, error: string | null, removed: readonly string[] = [], faults?: readonly string[]): void {
    this.#roster.acknowledge(sidecar, { version, error, removed, ...(faults !== undefined && { faults }) });
    if (error) this.#log.warn({ sidecar, version, error }, 'sidecar refused a snapshot');
  }

  /** Whether `sidecar` acknowledged applying `version`, or a state this control plane sent after it. */
  hasApplied(sidecar: string, version: string): boolean {
    return this.#roster.hasApplied(sidecar, version);
  }

  /**
   * A sidecar left for good (a clean stop): it is no longer listed, so that an emergency stop does not
   * wait for, or fail on, a sidecar that is gone.
   */
  forget(sidecar: string): void {
    if (this.#roster.forget(sidecar)) this.#log.info({ sidecar }, 'sidecar left');
  }

  sidecars(): SidecarStatus[] {
    return [...this.#roster.all()];
  }

  /** Resolves once every connected sidecar has acked `version` or a later state (or the time is up: false). */
  waitForAcks(version: string, timeoutMs: number): Promise<boolean> {
    return this.#roster.waitForAcks(version, timeoutMs);
  }

  close(): void {
    this.#registry.close();
    this.#unwatchFaults?.();
    this.#unwatchConfig?.();
    clearTimeout(this.#publishTimer);
    this.faults.close();
    for (const res of this.#subscribers.keys()) res.destroy();
  }

  #setConfig(text: string, source: string): void {
    this.#snapshot = compileSnapshot(parseConfig(text, source), source);
    this.#configText = text;
  }

  #publish(): void {
    // In id order: every control plane sharing the store makes the same state, so the same version.
    const faults = [...this.faults.all()]
      .filter((f) => f.origin === 'runtime')
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((f): FaultConfig => {
        const { ttl: _ttl, ...spec } = f.spec;
        return { ...spec, expiresAt: new Date(f.expiresAt!).toISOString() };
      });
    const instances = this.#registry.all().map(({ name, service, address, labels }): RegisteredInstance => ({ name, service, address, labels }));
    const version = versionOf(this.#configText, faults, instances);
    if (this.#state?.version === version) return;
    const before = this.#state as DesiredState | undefined;
    this.#state = Object.freeze({ version, config: this.#configText, faults: Object.freeze(faults), instances: Object.freeze(instances) });
    this.#message = Buffer.from(`event: snapshot\ndata: ${JSON.stringify(this.#state)}\n\n`);
    const delta = before && instanceDelta(before, this.#state);
    this.#delta = delta && { base: delta.base, message: Buffer.from(`event: delta\ndata: ${JSON.stringify(delta)}\n\n`) };
    this.#roster.published(version);
    for (const [res, subscriber] of this.#subscribers) this.#send(res, subscriber);
  }

  /**
   * Writes the current state to one watch stream, unless its socket has not taken the last one yet:
   * then it gets the state current when it drains, not every one made meanwhile (under a burst of
   * changes a slow reader would otherwise be sent, and read, each whole snapshot in turn).
   */
  #send(res: ServerResponse, subscriber: Subscriber): void {
    if (subscriber.behind || subscriber.sent === this.#state.version) return;
    // A delta only to a stream whose last state is the delta's base; any other gets the whole state.
    const delta = this.#delta;
    const message = subscriber.deltas && delta && delta.base === subscriber.sent ? delta.message : this.#message;
    subscriber.sent = this.#state.version;
    if (res.write(message)) return;
    subscriber.behind = true;
    res.once('drain', () => {
      subscriber.behind = false;
      if (this.#subscribers.has(res)) this.#send(res, subscriber);
    });
  }

  /**
   * Writes what changed of the runtime faults to the store, against what this control plane last saw
   * there (so that it never deletes a fault another control plane added that it has not seen yet). Each
   * key lives under a lease a little longer than the fault's own: gone from the store when it ends, even
   * with every control plane down (sidecars end it on their own clocks meanwhile).
   */
  async #persistFaults(): Promise<void> {
    try {
      const live = new Map(this.faults.all().filter((f) => f.origin === 'runtime').map((f) => {
        const { ttl: _ttl, ...spec } = f.spec;
        return [f.id, { json: JSON.stringify({ ...spec, expiresAt: new Date(f.expiresAt!).toISOString() }), expiresAt: f.expiresAt! }] as const;
      }));
      for (const id of [...this.#stored.keys()]) {
        if (live.has(id)) continue;
        this.#stored.delete(id);
        await this.#store.delete(`${FAULT_PREFIX}${id}`);
      }
      for (const [id, { json, expiresAt }] of live) {
        if (this.#stored.get(id) === json) continue;
        this.#stored.set(id, json);
        this.#written.set(id, json);
        if (this.#store.leasesOutliveProcess) {
          const lease = await this.#store.grant(Math.max(1_000, expiresAt - Date.now()) + FAULT_LEASE_SLACK_MS);
          await this.#store.putLeased(`${FAULT_PREFIX}${id}`, json, lease);
        } else {
          await this.#store.put(`${FAULT_PREFIX}${id}`, json);
        }
      }
    } catch (error) {
      this.#log.error({ error: (error as Error).message }, 'could not store the runtime faults');
    }
  }

  /**
   * The emergency stop's removal: every runtime fault of the mesh — this replica's, and any the store
   * holds that it has not taken (another replica's put its watch has not brought yet, one over a limit
   * here) — removed from its table and from the store. Returns the ids removed, sorted.
   */
  async deleteAllFaults(): Promise<string[]> {
    const deleted = new Set(this.faults.deleteAll());
    await this.#persisting;
    for (const key of await this.#store.list(FAULT_PREFIX)) {
      const id = key.slice(FAULT_PREFIX.length);
      deleted.add(id);
      this.#stored.delete(id);
      await this.#store.delete(key);
    }
    return [...deleted].sort();
  }

  /** A runtime fault changed in the store (this control plane's write, another's, or a lease's end). */
  async #faultChanged(key: string, value: string | undefined): Promise<void> {
    const id = key.slice(FAULT_PREFIX.length);
    if (value === undefined) {
      this.#stored.delete(id);
      this.#loading = true;
      try {
        if (this.faults.delete(id)) this.#publish();
      } finally {
        this.#loading = false;
      }
      return;
    }
    // Its own write coming back, one it has since deleted or replaced (a renewal just before a delete):
    // taking it would bring the fault back.
    if (this.#stored.get(id) === value || this.#written.get(id) === value) return;
    this.#stored.set(id, value);
    this.#loading = true;
    try {
      this.faults.put(JSON.parse(value) as FaultConfig);
      this.#publish();
    } catch (error) {
      this.#log.warn({ key, error: (error as Error).message }, 'stored fault not taken (expired, or over a limit)');
      // An expired one is gone for every control plane: its key goes too (one over a limit here may not be elsewhere).
      const expiresAt = Date.parse((JSON.parse(value) as { expiresAt?: string }).expiresAt ?? '');
      if (expiresAt <= Date.now()) {
        this.#stored.delete(id);
        void this.#store.delete(key).catch(() => undefined);
      }
    } finally {
      this.#loading = false;
    }
  }

  /** The config changed in the store (another control plane's PUT /config): validated, then sent on. */
  #configChanged(text: string | undefined): void {
    if (text === undefined || text === this.#configText) return;
    try {
      this.#setConfig(text, 'store');
      this.#publish();
    } catch (error) {
      this.#log.error({ error: (error as Error).message }, 'the stored config does not validate here: the one in force stays');
    }
  }

  /** Publishes soon, once for the changes that arrive together (a fleet's instances registering at once). */
  #publishSoon(): void {
    if (this.#publishTimer) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      this.#publish();
    }, PUBLISH_COALESCE_MS);
  }
}

interface Subscriber {
  readonly sidecar: string;
  /** It takes instance deltas. */
  readonly deltas: boolean;
  sent: string | undefined;
  behind: boolean;
}

/** Whether the sidecar should push its request.done (someone reads the merged stream) or decisions only. */
function sendCollect(res: ServerResponse, requests: boolean): void {
  res.write(`event: collect\ndata: ${JSON.stringify({ requests })}\n\n`);
}
