// Revoked join tokens: one store key per revoked token id (tokens/revoked/<jti>), kept until the token
// would have expired anyway. Every control plane sharing the store watches the prefix, so a revocation
// written on one is refused by all of them — and each cuts the streams that token opened.
import type { Store } from './store.ts';

const PREFIX = 'tokens/revoked/';

export interface Revocation {
  readonly jti: string;
  /** The token's service, when the whole token was given (not only its id). */
  readonly service?: string;
  /** When the token expires: the revocation is needed until then, and dropped after. */
  readonly expiresAt: string;
  readonly revokedAt: string;
}

export class Revocations {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #revoked = new Map<string, Revocation>();
  readonly #listeners = new Set<(revocation: Revocation) => void>();
  #stopWatching: (() => void) | undefined;

  private constructor(store: Store, now: () => number) {
    this.#store = store;
    this.#now = now;
  }

  /** Watches the store's revocations (then reads them: none written in between is missed), dropping the stale ones. */
  static async open(store: Store, now: () => number): Promise<Revocations> {
    const revocations = new Revocations(store, now);
    revocations.#stopWatching = await store.watch(PREFIX, ({ key, value }) => {
      if (value === undefined) revocations.#revoked.delete(key.slice(PREFIX.length));
      else revocations.#learn(value);
    });
    for (const value of (await store.entries(PREFIX)).values()) revocations.#learn(value);
    await revocations.#prune();
    return revocations;
  }

  /** The revocation of a token id, if it is revoked. */
  get(jti: string): Revocation | undefined {
    return this.#revoked.get(jti);
  }

  all(): Revocation[] {
    return [...this.#revoked.values()].sort((a, b) => a.revokedAt.localeCompare(b.revokedAt));
  }

  /** Stores a revocation (every replica learns it through the store) and acts on it here at once. */
  async revoke(jti: string, expiresAt: number, service?: string): Promise<Revocation> {
    const known = this.#revoked.get(jti);
    if (known) return known;
    const revocation: Revocation = { jti, ...(service !== undefined && { service }), expiresAt: new Date(expiresAt).toISOString(), revokedAt: new Date(this.#now()).toISOString() };
    await this.#store.put(`${PREFIX}${jti}`, JSON.stringify(revocation));
    this.#learn(JSON.stringify(revocation));
    await this.#prune();
    return revocation;
  }

  /** Called once per token id revoked, here or on another control plane. */
  onRevoked(listener: (revocation: Revocation) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#stopWatching?.();
    this.#listeners.clear();
  }

  #learn(value: string): void {
    let revocation: Revocation;
    try {
      revocation = JSON.parse(value) as Revocation;
    } catch {
      return;
    }
    if (typeof revocation.jti !== 'string' || this.#revoked.has(revocation.jti)) return;
    this.#revoked.set(revocation.jti, revocation);
    for (const listener of this.#listeners) listener(revocation);
  }

  /** Forgets revocations of tokens that have expired since: an expired token is refused as such. */
  async #prune(): Promise<void> {
    const now = this.#now();
    for (const revocation of [...this.#revoked.values()]) {
      if (Date.parse(revocation.expiresAt) > now) continue;
      this.#revoked.delete(revocation.jti);
      await this.#store.delete(`${PREFIX}${revocation.jti}`);
    }
  }
}
