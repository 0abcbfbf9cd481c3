// The control plane's store on etcd, so that several control planes share one desired state: every key
// of the Store interface under /faultline/<prefix>/, leases that are etcd's own (their keys vanish on
// etcd's clock even with every control plane gone, and any client renews them by id), watches that
// resume and re-list (etcd-watch.ts) and an election for what must run once (etcd-election.ts). The npm
// `etcd3` client stays inside this file and those two: a /v3/ JSON-gateway client could stand in.
import { Etcd3, EtcdLeaseInvalidError, type Namespace } from 'etcd3';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import type { Elector, Leadership } from './election.ts';
import { EtcdElector } from './etcd-election.ts';
import { LeaseKeepAlive } from './etcd-keepalive.ts';
import { PrefixWatch } from './etcd-watch.ts';
import { checkKey, type Lease, type Store, type StoreChange } from './store.ts';

export interface EtcdStoreOptions {
  /** Members' client addresses: "host:port" or "http://host:port". */
  readonly hosts: readonly string[];
  /** The store's own subtree: keys live under /faultline/<prefix>/. */
  readonly prefix: string;
  /**
   * Deadline of each unary call (a get, a put, a grant), 2 s by default; then it is tried on another
   * member. A write in flight when etcd's raft leader dies is lost with it and waits for this deadline.
   */
  readonly callTimeoutMs?: number;
  /** The largest request the members take (their --max-request-bytes): 1.5 MiB by default. */
  readonly maxRequestBytes?: number;
}

const LEASE_ID = /^[1-9][0-9]{0,19}$/;
const PREFIX = /^[a-z0-9][a-z0-9.-]*$/;

/** Full jitter, 100 ms doubling up to 2 s. */
function jitteredBackoff(attempt: number): { readonly duration: number; next(): ReturnType<typeof jitteredBackoff> } {
  return { duration: Math.random() * Math.min(2_000, 100 * 2 ** attempt), next: () => jitteredBackoff(attempt + 1) };
}

function checkLeaseId(id: string): void {
  if (!LEASE_ID.test(id)) throw new Error(`not an etcd lease id: "${id}"`);
}

/** A Store key prefix ("faults/", or "" for all), checked as a key would be. */
function checkPrefix(prefix: string): void {
  if (prefix !== '') checkKey(prefix.replace(/\/$/, ''));
}

export class EtcdStore implements Store, Elector {
  readonly leasesOutliveProcess = true;
  readonly hosts: readonly string[];
  /** Where this store's keys live in etcd: "/faultline/<prefix>/". */
  readonly root: string;
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  readonly #callTimeoutMs: number;
  readonly #maxRequestBytes: number;
  readonly #watches = new Set<PrefixWatch>();
  readonly #elector: EtcdElector;
  readonly #keepAlive: LeaseKeepAlive;
  #closed = false;

  private constructor(options: EtcdStoreOptions) {
    if (options.hosts.length === 0) throw new FaultlineError(ErrorCode.StoreInvalid, 'an etcd store needs at least one member address');
    if (!PREFIX.test(options.prefix)) {
      throw new FaultlineError(ErrorCode.StoreInvalid, `not a valid etcd store prefix: "${options.prefix}" (lowercase letters, digits, "-" and ".")`);
    }
    this.hosts = options.hosts.map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`));
    this.root = `/faultline/${options.prefix}/`;
    this.#callTimeoutMs = options.callTimeoutMs ?? 2_000;
    this.#maxRequestBytes = options.maxRequestBytes ?? 1.5 * 1024 * 1024;
    this.#client = new Etcd3({
      hosts: [...this.hosts],
      dialTimeout: this.#callTimeoutMs,
      // Streams (watches, keepalives) carry no deadline; unary calls do, so a hung member is left for another.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.#callTimeoutMs }),
      // HTTP/2 pings notice a dead connection under a watch; etcd refuses pings less than 5 s apart.
      // Answers larger than gRPC's 4 MiB default (a whole prefix read at once) are taken too.
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
      // A broken watch stream comes back within 2 s of etcd answering again (etcd3's own backoff grows to 30 s).
      faultHandling: { watchBackoff: jitteredBackoff(0) },
    });
    this.#ns = this.#client.namespace(this.root);
    this.#keepAlive = new LeaseKeepAlive(this.#client.leaseClient);
    this.#elector = new EtcdElector(this.#ns, {
      grant: (ttlMs) => this.grant(ttlMs),
      renew: (id, budgetMs) => this.#renew(id, budgetMs),
      revoke: (id) => this.revoke(id),
    });
  }

  /** Opens a store on etcd and checks that a member answers: a wrong address fails here, clearly. */
  static async connect(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(options);
    try {
      await store.#ns.get('_ping').exec();
    } catch (error) {
      store.#client.close();
      throw new FaultlineError(ErrorCode.StoreUnavailable, `cannot reach etcd at ${store.hosts.join(', ')}: ${describe(error)}`, { cause: error });
    }
    return store;
  }

  async get(key: string): Promise<string | undefined> {
    checkKey(key);
    return (await this.#ns.get(key).string()) ?? undefined;
  }

  async put(key: string, value: string): Promise<void> {
    checkKey(key);
    this.#checkSize(key, value);
    await this.#ns.put(key).value(value).exec();
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#ns.delete().key(key).exec();
  }

  /** A transaction: put only while the key has never been created (its create revision is 0). */
  async create(key: string, value: string): Promise<boolean> {
    checkKey(key);
    this.#checkSize(key, value);
    const result = await this.#ns.if(key, 'Create', '==', 0).then(this.#ns.put(key).value(value)).commit();
    return result.succeeded;
  }

  /** A transaction: put only while the key's value is `expected` (or, undefined, while it does not exist). */
  async replace(key: string, expected: string | undefined, value: string): Promise<boolean> {
    if (expected === undefined) return this.create(key, value);
    checkKey(key);
    this.#checkSize(key, value);
    const result = await this.#ns.if(key, 'Value', '==', expected).then(this.#ns.put(key).value(value)).commit();
    return result.succeeded;
  }

  async list(prefix: string): Promise<string[]> {
    return [...(await this.entries(prefix)).keys()];
  }

  async entries(prefix: string): Promise<Map<string, string>> {
    checkPrefix(prefix);
    const { kvs } = await this.#ns.getAll().prefix(prefix).exec();
    const found = new Map<string, string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      // Internal keys (elections, "_…") are no Store keys: they start with no letter or digit.
      if (!key.startsWith('_')) found.set(key, kv.value.toString());
    }
    return found;
  }

  /** etcd keeps leases in whole seconds and at least 1.5 election timeouts (2 s by default): the TTL granted is returned. */
  async grant(ttlMs: number): Promise<Lease> {
    if (!(ttlMs > 0)) throw new Error(`a lease needs a positive TTL, not ${ttlMs} ms`);
    const granted = await this.#client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlMs / 1000) });
    return { id: String(granted.ID), ttlMs: Number(granted.TTL) * 1000 };
  }

  async putLeased(key: string, value: string, lease: Lease): Promise<void> {
    checkKey(key);
    checkLeaseId(lease.id);
    this.#checkSize(key, value);
    try {
      await this.#ns.put(key).value(value).lease(lease.id).exec();
    } catch (error) {
      if (error instanceof EtcdLeaseInvalidError) throw new Error(`lease ${lease.id} has ended`, { cause: error });
      throw error;
    }
  }

  async renew(leaseId: string): Promise<boolean> {
    checkLeaseId(leaseId);
    return this.#renew(leaseId, this.#callTimeoutMs);
  }

  async revoke(leaseId: string): Promise<void> {
    checkLeaseId(leaseId);
    try {
      await this.#client.leaseClient.leaseRevoke({ ID: leaseId });
    } catch (error) {
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
    }
  }

  async watch(prefix: string, onChange: (change: StoreChange) => void): Promise<() => void> {
    checkPrefix(prefix);
    const watch = new PrefixWatch(this.#ns, prefix, (change) => {
      if (!change.key.startsWith('_')) onChange(change);
    });
    await watch.start();
    this.#watches.add(watch);
    return () => {
      this.#watches.delete(watch);
      void watch.stop();
    };
  }

  campaign(name: string, candidateId: string, options: { ttlMs: number; signal?: AbortSignal }): Promise<Leadership> {
    return this.#elector.campaign(name, candidateId, options);
  }

  leader(name: string): Promise<string | undefined> {
    return this.#elector.leader(name);
  }

  /** Resigns every leadership (another control plane leads at once), stops the watches, closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#elector.close();
    await Promise.all([...this.#watches].map((w) => w.stop()));
    this.#watches.clear();
    this.#keepAlive.close();
    this.#client.close();
  }

  /**
   * Refused here rather than by etcd: etcd3 takes its refusal for a failing member, retries it and, after
   * three, stops calling that member for 5 s — one oversized write would cut a one-member store off.
   */
  #checkSize(key: string, value: string): void {
    const bytes = Buffer.byteLength(this.root) + Buffer.byteLength(key) + Buffer.byteLength(value) + 64;
    if (bytes > this.#maxRequestBytes) {
      const mib = (bytes / 1024 / 1024).toFixed(1);
      throw new FaultlineError(ErrorCode.StoreInvalid, `"${key}" (${mib} MiB) is larger than etcd takes (${(this.#maxRequestBytes / 1024 / 1024).toFixed(1)} MiB, its --max-request-bytes)`);
    }
  }

  /**
   * One keepalive on etcd's lease stream (one stream for all: etcd-keepalive.ts), by id: it works for
   * any lease, whoever granted it. A member
   * that fails is left for another (each attempt may land on any member), within `budgetMs`.
   */
  async #renew(leaseId: string, budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.hosts.length && Date.now() < deadline; attempt++) {
      try {
        return await this.#keepAlive.renew(leaseId, deadline);
      } catch (error) {
        lastError = error;
      }
    }
    throw new FaultlineError(ErrorCode.StoreUnavailable, `cannot renew lease ${leaseId} on etcd at ${this.hosts.join(', ')}: ${describe(lastError)}`, { cause: lastError });
  }
}
