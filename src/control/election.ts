// What must run once among control planes sharing a store (the scheduler, lease sweeps) runs under a
// Leadership won from an Elector: on etcd an election (etcd-election.ts), on one machine's file store
// the process itself (LocalElector). Leader-only work takes `signal` as its stop.
import type { Store } from './store.ts';

/** Leadership of one election, from winning it until it is lost or resigned. */
export interface Leadership {
  readonly name: string;
  readonly candidateId: string;
  /** The lease's TTL as etcd granted it (rounded up to whole seconds, at least its minimum). */
  readonly ttlMs: number;
  readonly isLeader: boolean;
  /** Aborted when leadership ends, with the reason: leader-only work takes it as its stop. */
  readonly signal: AbortSignal;
  /** Puts `key` only while this leadership holds (a compare on the leader key in the same transaction); false when it no longer does. */
  put(key: string, value: string): Promise<boolean>;
  /** Steps down: the next candidate leads at once. */
  resign(): Promise<void>;
}

export interface Elector {
  /** Resolves when `candidateId` leads `name`; rejects when `signal` aborts or the candidacy's lease is lost first. */
  campaign(name: string, candidateId: string, options: { ttlMs: number; signal?: AbortSignal }): Promise<Leadership>;
  /** The candidate leading `name` now, if any. */
  leader(name: string): Promise<string | undefined>;
}

/**
 * One process is the only control plane of a file store: a campaign wins as soon as no other campaign
 * of the same name in this process leads, and leadership ends only by resigning.
 */
export class LocalElector implements Elector {
  readonly #store: Store;
  readonly #leaders = new Map<string, LocalLeadership>();
  readonly #waiting = new Map<string, (() => void)[]>();

  constructor(store: Store) {
    this.#store = store;
  }

  async campaign(name: string, candidateId: string, options: { ttlMs: number; signal?: AbortSignal }): Promise<Leadership> {
    for (;;) {
      options.signal?.throwIfAborted();
      const current = this.#leaders.get(name);
      if (!current) break;
      await new Promise<void>((resolve, reject) => {
        const stop = (): void => reject(options.signal?.reason);
        options.signal?.addEventListener('abort', stop, { once: true });
        this.#waiting.set(name, [...(this.#waiting.get(name) ?? []), () => {
          options.signal?.removeEventListener('abort', stop);
          resolve();
        }]);
      });
    }
    const leadership = new LocalLeadership(this.#store, name, candidateId, options.ttlMs, () => {
      this.#leaders.delete(name);
      const next = this.#waiting.get(name) ?? [];
      this.#waiting.delete(name);
      for (const wake of next) wake();
    });
    this.#leaders.set(name, leadership);
    return leadership;
  }

  async leader(name: string): Promise<string | undefined> {
    return this.#leaders.get(name)?.candidateId;
  }
}

class LocalLeadership implements Leadership {
  readonly name: string;
  readonly candidateId: string;
  readonly ttlMs: number;
  readonly #store: Store;
  readonly #ended = new AbortController();
  readonly #onEnd: () => void;

  constructor(store: Store, name: string, candidateId: string, ttlMs: number, onEnd: () => void) {
    this.#store = store;
    this.name = name;
    this.candidateId = candidateId;
    this.ttlMs = ttlMs;
    this.#onEnd = onEnd;
  }

  get isLeader(): boolean {
    return !this.#ended.signal.aborted;
  }

  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  async put(key: string, value: string): Promise<boolean> {
    if (!this.isLeader) return false;
    await this.#store.put(key, value);
    return true;
  }

  async resign(): Promise<void> {
    if (this.#ended.signal.aborted) return;
    this.#ended.abort(new Error(`leadership of ${this.candidateId} in "${this.name}" ended: resigned`));
    this.#onEnd();
  }
}
