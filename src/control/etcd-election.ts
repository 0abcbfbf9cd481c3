// Who runs what must run once (the scheduler, lease sweeps) among control planes sharing an etcd: the
// election of etcd's Go `concurrency` package. Each candidate puts _elections/<name>/<lease> under its
// own lease; the key with the lowest create revision leads, the others wait for the key just before
// theirs to go. A leader steps down on its first failed keepalive, or when its lease could have ended
// on etcd's clock (last answered keepalive + TTL − margin) — never later than a rival can take over —
// and fences its writes with its key's create revision, so a leader that lost without knowing writes nothing.
import type { Namespace } from 'etcd3';
import type { Elector, Leadership } from './election.ts';
import type { Lease } from './store.ts';

/** What the election needs from the store's leases. */
export interface ElectionLeases {
  grant(ttlMs: number): Promise<Lease>;
  /** One keepalive by id within `budgetMs`; false when the lease has ended, throws when no member answered. */
  renew(id: string, budgetMs: number): Promise<boolean>;
  revoke(id: string): Promise<void>;
}

const NAME = /^[a-z0-9][a-z0-9.-]*$/;

/** The leader steps down this long before its lease could end on etcd (a third of the TTL, at most 1 s). */
export const stepDownMarginMs = (ttlMs: number): number => Math.min(1_000, Math.floor(ttlMs / 3));

export class EtcdElector implements Elector {
  readonly #ns: Namespace;
  readonly #leases: ElectionLeases;
  readonly #candidacies = new Set<Candidacy>();

  constructor(ns: Namespace, leases: ElectionLeases) {
    this.#ns = ns;
    this.#leases = leases;
  }

  async campaign(name: string, candidateId: string, options: { ttlMs: number; signal?: AbortSignal }): Promise<Leadership> {
    if (!NAME.test(name)) throw new Error(`not a valid election name: "${name}"`);
    options.signal?.throwIfAborted();
    const lease = await this.#leases.grant(options.ttlMs);
    const candidacy = new Candidacy(this.#ns, this.#leases, name, candidateId, lease);
    this.#candidacies.add(candidacy);
    candidacy.signal.addEventListener('abort', () => this.#candidacies.delete(candidacy), { once: true });
    const abandon = (): void => void candidacy.end(`campaign abandoned: ${String(options.signal?.reason)}`);
    options.signal?.addEventListener('abort', abandon, { once: true });
    try {
      await candidacy.run();
      return candidacy;
    } catch (error) {
      await candidacy.end(`campaign failed: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', abandon);
    }
  }

  async leader(name: string): Promise<string | undefined> {
    if (!NAME.test(name)) throw new Error(`not a valid election name: "${name}"`);
    const { kvs } = await this.#ns.getAll().prefix(`_elections/${name}/`).sort('Create', 'Ascend').limit(1).exec();
    return kvs[0]?.value.toString();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#candidacies].map((c) => c.end('the store closed')));
  }
}

class Candidacy implements Leadership {
  readonly name: string;
  readonly candidateId: string;
  readonly ttlMs: number;
  readonly #ns: Namespace;
  readonly #leases: ElectionLeases;
  readonly #lease: Lease;
  readonly #key: string;
  readonly #ended = new AbortController();
  #revision = '0';
  #leading = false;
  #keepalive: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #cancelWait: (() => void) | undefined;

  constructor(ns: Namespace, leases: ElectionLeases, name: string, candidateId: string, lease: Lease) {
    this.#ns = ns;
    this.#leases = leases;
    this.name = name;
    this.candidateId = candidateId;
    this.#lease = lease;
    this.ttlMs = lease.ttlMs;
    this.#key = `_elections/${name}/${BigInt(lease.id).toString(16)}`;
  }

  get isLeader(): boolean {
    return this.#leading && !this.#ended.signal.aborted;
  }

  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  /** Enters the election and waits for this candidate's turn, keeping the lease alive meanwhile. */
  async run(): Promise<void> {
    const sentAt = Date.now();
    const put = await this.#ns
      .if(this.#key, 'Create', '==', 0)
      .then(this.#ns.put(this.#key).value(this.candidateId).lease(this.#lease.id))
      .commit();
    if (!put.succeeded) throw new Error(`election key ${this.#key} exists already`);
    this.#revision = put.header.revision;
    this.#acknowledged(sentAt);
    this.#keepalive = setInterval(() => void this.#renew(), Math.max(200, Math.floor(this.ttlMs / 3)));
    while (!(await this.#isFirst())) this.#ended.signal.throwIfAborted();
    this.#ended.signal.throwIfAborted();
    this.#leading = true;
  }

  async put(key: string, value: string): Promise<boolean> {
    if (!this.isLeader) return false;
    const txn = await this.#ns.if(this.#key, 'Create', '==', this.#revision).then(this.#ns.put(key).value(value)).commit();
    if (!txn.succeeded) await this.end('the leader key is gone');
    return txn.succeeded;
  }

  async resign(): Promise<void> {
    await this.end('resigned');
  }

  /** Ends the candidacy or leadership: aborts the signal at once, then revokes the lease (best effort: etcd ends it anyway). */
  async end(reason: string): Promise<void> {
    if (this.#ended.signal.aborted) return;
    clearInterval(this.#keepalive);
    clearTimeout(this.#deadline);
    this.#ended.abort(new Error(`${this.#leading ? 'leadership' : 'candidacy'} of ${this.candidateId} in "${this.name}" ended: ${reason}`));
    this.#cancelWait?.();
    await this.#leases.revoke(this.#lease.id).catch(() => undefined);
  }

  /** True when no key older than ours is left; otherwise waits until the one just before ours goes, then false. */
  async #isFirst(): Promise<boolean> {
    const range = await this.#ns.getAll().prefix(`_elections/${this.name}/`).sort('Create', 'Ascend').exec();
    const mine = BigInt(this.#revision);
    if (!range.kvs.some((kv) => kv.key.toString() === this.#key)) throw new Error('its election key is gone (its lease ended)');
    const before = range.kvs.filter((kv) => BigInt(kv.create_revision) < mine).pop();
    if (!before) return true;
    const watcher = await this.#ns.watch().key(before.key).startRevision(String(BigInt(range.header.revision) + 1n)).create();
    try {
      await new Promise<void>((resolve) => {
        this.#cancelWait = resolve;
        watcher.on('delete', () => resolve());
        if (this.#ended.signal.aborted) resolve();
      });
    } finally {
      this.#cancelWait = undefined;
      await watcher.cancel().catch(() => undefined);
    }
    return false;
  }

  async #renew(): Promise<void> {
    const sentAt = Date.now();
    try {
      if (await this.#leases.renew(this.#lease.id, Math.floor(this.ttlMs / 3))) return this.#acknowledged(sentAt);
      await this.end('its lease has ended');
    } catch (error) {
      await this.end(`a keepalive failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** etcd restarted the lease's TTL no earlier than `sentAt`: it cannot end before sentAt + TTL on etcd's clock. */
  #acknowledged(sentAt: number): void {
    if (this.#ended.signal.aborted) return;
    clearTimeout(this.#deadline);
    const left = sentAt + this.ttlMs - stepDownMarginMs(this.ttlMs) - Date.now();
    this.#deadline = setTimeout(() => void this.end('no keepalive answered in time'), Math.max(0, left));
  }
}
