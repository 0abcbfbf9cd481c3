// The instances that registered themselves (sidecars joined with flags), as the store holds them: each
// under a lease its sidecar renews, seen through a watch so that every control plane sharing the store
// has every registration. Reads are what each request and each new state needs: the sorted list (kept
// until the next change) and which services have instances (a join token's sidecar is checked against it).
import type { RegisteredInstance } from '../config/snapshot.ts';
import type { Logger } from '../telemetry/log.ts';
import { byServiceAndName } from './desired-state.ts';
import type { Store } from './store.ts';

/** A registered instance as the control plane keeps it: under a lease its sidecar renews. */
export interface InstanceRecord extends RegisteredInstance {
  readonly lease: { readonly id: string; readonly ttlMs: number };
  readonly registeredAt: string;
}

/** How long a registration lives unless renewed (the sidecar renews at a third of it). */
export const DEFAULT_REGISTRATION_TTL_MS = 10_000;

const INSTANCE_PREFIX = 'instances/';

/** An instance name another service holds. */
export class RegistrationConflict extends Error {}

export class InstanceRegistry {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #records = new Map<string, InstanceRecord>();
  /** How many instances each service has. */
  readonly #services = new Map<string, number>();
  /** The records sorted by service and name, until the next change. */
  #sorted: InstanceRecord[] | undefined;
  #unwatch: (() => void) | undefined;

  constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Reads the stored registrations, then follows every change; `changed` runs after each one. */
  async open(changed: () => void): Promise<void> {
    for (const [key, value] of await this.#store.entries(INSTANCE_PREFIX)) this.#changed(key, value);
    this.#unwatch = await this.#store.watch(INSTANCE_PREFIX, ({ key, value }) => {
      this.#changed(key, value);
      changed();
    });
  }

  /** Registers `instance` under a new lease (revoking its previous one); a name another service holds is refused. */
  async register(instance: RegisteredInstance, ttlMs: number): Promise<InstanceRecord> {
    const before = this.#records.get(instance.name);
    if (before && before.service !== instance.service) throw new RegistrationConflict(`instance "${instance.name}" is registered for service ${before.service}, not ${instance.service}`);
    const lease = await this.#store.grant(ttlMs);
    const record: InstanceRecord = {
      name: instance.name,
      service: instance.service,
      address: instance.address,
      labels: { ...instance.labels },
      lease: { id: lease.id, ttlMs: lease.ttlMs },
      registeredAt: new Date().toISOString(),
    };
    // Two rounds of the store (on etcd, two raft commits): a lease is no operation of a transaction,
    // and a put sent with a grant of a chosen id reaches the leader first about half the time.
    await this.#store.putLeased(`${INSTANCE_PREFIX}${instance.name}`, JSON.stringify(record), lease);
    if (before && before.lease.id !== lease.id) await this.#store.revoke(before.lease.id).catch(() => undefined);
    this.#log.info({ instance: instance.name, service: instance.service, address: instance.address }, 'instance registered');
    return record;
  }

  /** Renews an instance's lease; false when it has ended (the instance must register again). */
  async renew(name: string, leaseId: string): Promise<boolean> {
    const record = this.#records.get(name);
    if (record && record.lease.id !== leaseId) return false;
    return this.#store.renew(leaseId);
  }

  /** Ends a registration now (a clean stop); false when there was none. */
  async deregister(name: string): Promise<boolean> {
    const record = this.#records.get(name);
    if (!record) return false;
    await this.#store.revoke(record.lease.id);
    this.#changed(`${INSTANCE_PREFIX}${name}`, undefined);
    this.#log.info({ instance: name }, 'instance deregistered');
    return true;
  }

  /** Every instance, by service then name (the same order on every control plane). */
  all(): readonly InstanceRecord[] {
    this.#sorted ??= [...this.#records.values()].sort(byServiceAndName);
    return this.#sorted;
  }

  get(name: string): InstanceRecord | undefined {
    return this.#records.get(name);
  }

  /** Whether `service` has registered instances. */
  hasService(service: string): boolean {
    return this.#services.has(service);
  }

  services(): IterableIterator<string> {
    return this.#services.keys();
  }

  close(): void {
    this.#unwatch?.();
  }

  /** A change of the store's instances (from this control plane or another sharing the store). */
  #changed(key: string, value: string | undefined): void {
    const name = key.slice(INSTANCE_PREFIX.length);
    let record: InstanceRecord | undefined;
    if (value !== undefined) {
      try {
        record = JSON.parse(value) as InstanceRecord;
      } catch (error) {
        this.#log.warn({ key, error: (error as Error).message }, 'unreadable instance record ignored');
        return;
      }
    }
    const before = this.#records.get(name);
    if (before) this.#count(before.service, -1);
    if (record) {
      this.#records.set(name, record);
      this.#count(record.service, 1);
    } else {
      this.#records.delete(name);
    }
    this.#sorted = undefined;
  }

  #count(service: string, by: number): void {
    const n = (this.#services.get(service) ?? 0) + by;
    if (n > 0) this.#services.set(service, n);
    else this.#services.delete(service);
  }
}
