// The console's sign-in sessions, kept server-side in this replica's memory: an id (the cookie's value,
// 256 random bits) → the role it signed in as, its CSRF token and its end. Nothing about a session is
// in the cookie but its id; signing out, or its end, forgets it. A replica's sessions are its own: on
// another replica (behind a balancer without affinity) a person signs in again.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type ConsoleRole = 'admin' | 'viewer';

export interface Session {
  readonly role: ConsoleRole;
  /** The synchronizer token every state-changing request of this session carries (x-faultline-csrf). */
  readonly csrf: string;
  readonly expiresAt: number;
}

/** How long a session lasts from sign-in: a working day; no sliding renewal (sign in again). */
export const SESSION_TTL_MS = 8 * 3_600_000;
/** Sessions kept at most: a sign-in beyond forgets the oldest (no memory grows with sign-ins). */
const MAX_SESSIONS = 1_000;

/** What a session holds open (a stream's response): cut when the session ends. */
export interface Held {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export class Sessions {
  readonly #sessions = new Map<string, Session>();
  /** Streams open under each session (by its key): cut at sign-out and at its end. */
  readonly #held = new Map<string, Set<Held>>();
  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(now: () => number = Date.now, ttlMs = SESSION_TTL_MS) {
    this.#now = now;
    this.#ttlMs = ttlMs;
  }

  /** A new session: its id (for the cookie) and the session. */
  create(role: ConsoleRole): { id: string; session: Session } {
    this.#sweep();
    while (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value!;
      this.#sessions.delete(oldest);
      for (const res of this.#held.get(oldest) ?? []) res.destroy();
      this.#held.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session: Session = { role, csrf: randomBytes(32).toString('base64url'), expiresAt: this.#now() + this.#ttlMs };
    this.#sessions.set(key(id), session);
    return { id, session };
  }

  /** The session of a cookie's id, while it lasts. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.#sessions.get(key(id));
    if (!session) return undefined;
    if (session.expiresAt <= this.#now()) {
      this.#sessions.delete(key(id));
      return undefined;
    }
    return session;
  }

  delete(id: string | undefined): void {
    if (!id) return;
    const k = key(id);
    this.#sessions.delete(k);
    for (const res of this.#held.get(k) ?? []) res.destroy();
    this.#held.delete(k);
  }

  /** Keeps a response open under the session of `id` to be cut when the session ends (sign-out, expiry). */
  hold(id: string, session: Session, res: Held): void {
    const k = key(id);
    let held = this.#held.get(k);
    if (!held) this.#held.set(k, (held = new Set()));
    held.add(res);
    const timer = setTimeout(() => res.destroy(), Math.max(0, session.expiresAt - this.#now())).unref();
    res.once('close', () => {
      clearTimeout(timer);
      held.delete(res);
      if (held.size === 0 && this.#held.get(k) === held) this.#held.delete(k);
    });
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Forgets ended sessions (a stream held under one is cut by its own timer). */
  #sweep(): void {
    const now = this.#now();
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k);
  }
}

/** Compares two secrets in constant time (over their digests: lengths may differ). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** Kept by digest: a dump of the map holds no usable cookie. */
function key(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
