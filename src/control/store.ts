// Where the control plane keeps its desired state. Callers see a small key-value interface with leases
// and watches, so that several control planes can share one store (etcd, etcd-store.ts) and one machine
// can keep using files (FileStore). The file store writes atomically (atomic-write.ts): a crash leaves
// the old value or the new one, never half of one.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.ts';

/** A change under a watched prefix: the key and its new value, or undefined when it was deleted (or its lease ended). */
export interface StoreChange {
  readonly key: string;
  readonly value: string | undefined;
}

/**
 * A lease: keys put under it vanish when it is revoked or not renewed within its TTL — whoever holds
 * it (the store owns the clock: with etcd they vanish even with every control plane gone). Its id is
 * the store's, so any control plane sharing the store can renew it.
 */
export interface Lease {
  readonly id: string;
  readonly ttlMs: number;
}

export interface Store {
  /**
   * Whether leased keys outlive this process (etcd keeps them, and ends them, on its own): then a
   * control plane stores runtime faults under leases; a file store keeps them as files instead, so that
   * a restarted control plane has them back (their expiry is in each one).
   */
  readonly leasesOutliveProcess: boolean;
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  /** Puts the key only if it does not exist yet (one writer wins, whoever else tries at once); true when this one did. */
  create(key: string, value: string): Promise<boolean>;
  /** Puts the key only if its value is `expected` now (undefined: only if it does not exist) — a compare-and-swap; true when this one did. */
  replace(key: string, expected: string | undefined, value: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Keys under a prefix ("faults/"), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Keys and values under a prefix, in one read. */
  entries(prefix: string): Promise<Map<string, string>>;
  /** A new lease of `ttlMs` (the store may round it up to what it can keep). */
  grant(ttlMs: number): Promise<Lease>;
  /** Puts a key that lives as long as the lease does. */
  putLeased(key: string, value: string, lease: Lease): Promise<void>;
  /** Renews a lease for another TTL; false when it has already ended (its keys are gone). */
  renew(leaseId: string): Promise<boolean>;
  /** Ends a lease now, deleting its keys. */
  revoke(leaseId: string): Promise<void>;
  /** Calls `onChange` for every later change under the prefix (by any writer of the store); returns the stop. */
  watch(prefix: string, onChange: (change: StoreChange) => void): Promise<() => void>;
  close(): Promise<void>;
}

/** Keys are paths of safe segments: lowercase letters, digits, "-", "." and "/" between them. */
export const STORE_KEY = /^[a-z0-9][a-z0-9.-]*(\/[a-z0-9][a-z0-9.-]*)*$/;

export function checkKey(key: string): void {
  if (!STORE_KEY.test(key) || key.split('/').includes('..')) throw new Error(`not a valid store key: "${key}"`);
}

interface LocalLease {
  readonly ttlMs: number;
  readonly keys: Set<string>;
  timer: NodeJS.Timeout;
}

/**
 * One machine's store: files in a directory, for what must outlive a restart; leased keys in memory,
 * for what lives only while its owner renews it (registrations: an instance re-registers when its
 * control plane comes back). Watches see the writes of this process, the only writer of its directory.
 */
export class FileStore implements Store {
  readonly leasesOutliveProcess = false;
  readonly #dir: string;
  readonly #leased = new Map<string, string>();
  readonly #leases = new Map<string, LocalLease>();
  readonly #watchers = new Set<{ prefix: string; onChange: (change: StoreChange) => void }>();
  /** Compare-and-puts, one after another. */
  #swaps: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.#dir = dir;
  }

  async get(key: string): Promise<string | undefined> {
    checkKey(key);
    if (this.#leased.has(key)) return this.#leased.get(key);
    try {
      return await readFile(this.#path(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(key: string, value: string): Promise<void> {
    const file = this.#path(key);
    await mkdir(file.slice(0, file.lastIndexOf('/')), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, value);
    this.#changed(key, value);
  }

  /** One process writes a file store: checking, then writing, is atomic enough for it. */
  async create(key: string, value: string): Promise<boolean> {
    return this.replace(key, undefined, value);
  }

  /** Compare and put with nothing else of this store's compare-and-puts in between (this process is its only writer). */
  replace(key: string, expected: string | undefined, value: string): Promise<boolean> {
    const turn = this.#swaps.then(async () => {
      if ((await this.get(key)) !== expected) return false;
      await this.put(key, value);
      return true;
    });
    this.#swaps = turn.catch(() => undefined);
    return turn;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    if (this.#leased.delete(key)) {
      for (const lease of this.#leases.values()) lease.keys.delete(key);
      this.#changed(key, undefined);
      return;
    }
    const existed = await readFile(this.#path(key), 'utf8').then(() => true, () => false);
    await rm(this.#path(key), { force: true });
    if (existed) this.#changed(key, undefined);
  }

  async list(prefix: string): Promise<string[]> {
    const dir = join(this.#dir, prefix);
    let files: string[] = [];
    try {
      files = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.endsWith('.tmp')).map((e) => `${prefix}${e.name}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const leased = [...this.#leased.keys()].filter((k) => k.startsWith(prefix));
    return [...new Set([...files, ...leased])].sort();
  }

  async entries(prefix: string): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const key of await this.list(prefix)) {
      const value = await this.get(key);
      if (value !== undefined) found.set(key, value);
    }
    return found;
  }

  async grant(ttlMs: number): Promise<Lease> {
    const id = randomBytes(8).toString('hex');
    const lease: LocalLease = { ttlMs, keys: new Set(), timer: setTimeout(() => void this.revoke(id), ttlMs).unref() };
    this.#leases.set(id, lease);
    return { id, ttlMs };
  }

  async putLeased(key: string, value: string, lease: Lease): Promise<void> {
    checkKey(key);
    const held = this.#leases.get(lease.id);
    if (!held) throw new Error(`lease ${lease.id} has ended`);
    // A key lives under one lease at a time, as in etcd: put under a new one, it leaves the old.
    for (const other of this.#leases.values()) other.keys.delete(key);
    held.keys.add(key);
    this.#leased.set(key, value);
    this.#changed(key, value);
  }

  async renew(leaseId: string): Promise<boolean> {
    const lease = this.#leases.get(leaseId);
    if (!lease) return false;
    clearTimeout(lease.timer);
    lease.timer = setTimeout(() => void this.revoke(leaseId), lease.ttlMs).unref();
    return true;
  }

  async revoke(leaseId: string): Promise<void> {
    const lease = this.#leases.get(leaseId);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.#leases.delete(leaseId);
    for (const key of lease.keys) {
      if (this.#leased.delete(key)) this.#changed(key, undefined);
    }
  }

  async watch(prefix: string, onChange: (change: StoreChange) => void): Promise<() => void> {
    const watcher = { prefix, onChange };
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  async close(): Promise<void> {
    for (const lease of this.#leases.values()) clearTimeout(lease.timer);
    this.#leases.clear();
    this.#leased.clear();
    this.#watchers.clear();
  }

  #changed(key: string, value: string | undefined): void {
    for (const w of this.#watchers) if (key.startsWith(w.prefix)) w.onChange({ key, value });
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.#dir, key);
  }
}
