// Which control plane leads: each campaigns in the election "control" as it starts, its URL the
// candidate, and again whenever it loses; the others wait their turn. One that closes resigns (the next
// leads at once); one that dies without a word leads no longer once its lease ends, within the TTL.
// Leader-only work (onLead: the sweep of game-day heads, head-sweep.ts; the scheduler,
// experiments/leader-duties.ts) takes its leadership's `signal` as its stop.
import { silentLogger, type Logger } from '../telemetry/log.ts';
import type { Elector, Leadership } from './election.ts';

export const ELECTION = 'control';
/** How long a control plane that died without resigning still leads: another leads within this. */
export const DEFAULT_LEADER_TTL_MS = 10_000;
/** How soon a campaign that failed (the store unreachable) is tried again. */
const RETRY_MS = 1_000;

/** What the API says of the election (GET /leader). */
export interface LeaderView {
  readonly candidate: string;
  readonly isLeader: boolean;
  /** The candidate leading now, if any. */
  leader(): Promise<string | undefined>;
}

export class ControlLeadership implements LeaderView {
  readonly candidate: string;
  readonly #elector: Elector;
  readonly #ttlMs: number;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;
  #current: Leadership | undefined;
  readonly #onLead = new Set<(leadership: Leadership) => void>();

  constructor(elector: Elector, candidate: string, ttlMs = DEFAULT_LEADER_TTL_MS, log: Logger = silentLogger) {
    this.#elector = elector;
    this.candidate = candidate;
    this.#ttlMs = ttlMs;
    this.#log = log;
    this.#loop = this.#run();
  }

  get isLeader(): boolean {
    return this.#current?.isLeader ?? false;
  }

  /** Its leadership while it leads. */
  get current(): Leadership | undefined {
    return this.#current;
  }

  /** Calls `start` each time this control plane comes to lead (at once if it leads now): leader-only work, stopped by the leadership's signal. */
  onLead(start: (leadership: Leadership) => void): () => void {
    this.#onLead.add(start);
    if (this.#current?.isLeader) start(this.#current);
    return () => this.#onLead.delete(start);
  }

  leader(): Promise<string | undefined> {
    return this.#elector.leader(ELECTION);
  }

  /** Stops campaigning and resigns: another control plane leads at once. */
  async close(): Promise<void> {
    this.#stop.abort(new Error('the control plane closed'));
    await this.#current?.resign().catch(() => undefined);
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const won = await this.#elector.campaign(ELECTION, this.candidate, { ttlMs: this.#ttlMs, signal });
        this.#current = won;
        this.#log.info({ candidate: this.candidate, ttlMs: won.ttlMs }, 'this control plane leads');
        for (const start of this.#onLead) {
          try {
            start(won);
          } catch (error) {
            this.#log.error({ error: (error as Error).message }, 'leader-only work failed to start');
          }
        }
        await new Promise<void>((resolve) => {
          won.signal.addEventListener('abort', () => resolve(), { once: true });
          if (won.signal.aborted) resolve();
        });
        this.#current = undefined;
        if (!signal.aborted) this.#log.warn({ reason: String((won.signal.reason as Error)?.message ?? won.signal.reason) }, 'leadership lost; campaigning again');
      } catch (error) {
        if (signal.aborted) break;
        this.#log.warn({ error: (error as Error).message }, 'campaign for leadership failed; trying again');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RETRY_MS);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    }
  }
}
