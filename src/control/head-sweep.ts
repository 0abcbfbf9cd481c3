// The leader's sweep of game-day heads (heads.ts): a game day whose runner died leaves a head that says
// "running" and, for up to a fault lease (5 s), faults in force. The leader closes such runs — removes
// their faults at once (those the head lists, and any other runtime fault of the same experiment) and
// writes the head complete, outcome `error`, saying why and who closed it — and trims old heads. Run
// under the leadership only, once when it comes to lead and then every SWEEP_EVERY_MS; a close is a
// compare-and-swap on the head (heads.ts updateHead), so a runner's heartbeat cannot undo it.
//
// Which runs are orphans: one not heard of for HEAD_STALE_MS (any runner: a CLI on a laptop, a
// scheduler); and, when this control plane comes to lead, every run an earlier leader's scheduler
// started — a scheduler runs its game days in its own process and halts them when it stops leading,
// so a run of another leader's scheduler is one that lost its runner (or is halting already).
import { silentLogger, type Logger } from '../telemetry/log.ts';
import type { Leadership } from './election.ts';
import { FINISHED_HEADS_KEPT, headKey, isStale, listHeads, thisRunner, updateHead, type GameDayHead } from './heads.ts';
import type { ControlPlane } from './plane.ts';
import type { Store } from './store.ts';

export const SWEEP_EVERY_MS = 5_000;

export class HeadSweeper {
  readonly #store: Store;
  readonly #plane: ControlPlane;
  readonly #self: string;
  readonly #log: Logger;

  constructor(store: Store, plane: ControlPlane, self: string, log: Logger = silentLogger) {
    this.#store = store;
    this.#plane = plane;
    this.#self = self;
    this.#log = log;
  }

  /** Sweeps at once (as a new leader), then every SWEEP_EVERY_MS while `leadership` lasts. */
  lead(leadership: Leadership): void {
    const sweep = (takeover: boolean): void => {
      void this.sweep(leadership, takeover).catch((error: Error) => this.#log.warn({ error: error.message }, 'sweep of game-day heads failed'));
    };
    sweep(true);
    const timer = setInterval(() => sweep(false), SWEEP_EVERY_MS);
    timer.unref();
    leadership.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** Closes orphaned runs and trims old heads; returns the ids it closed. */
  async sweep(leadership: Leadership, takeover: boolean, now = Date.now()): Promise<string[]> {
    const { heads, bad } = await listHeads(this.#store);
    for (const key of bad) this.#log.warn({ key }, 'a game-day head in the store does not parse; left alone');
    const closed: string[] = [];
    for (const head of heads) {
      if (leadership.signal.aborted) break;
      // Runs of this very process are alive (it is running them).
      if (head.status !== 'running' || head.runner === thisRunner()) continue;
      const why = isStale(head, now)
        ? `its runner (${head.runner}) was not heard of since ${head.heartbeatAt}`
        : takeover && head.scheduledBy !== undefined
          ? `the control plane whose scheduler ran it (${head.scheduledBy}) stopped leading`
          : undefined;
      if (why && (await this.#close(leadership, head, why, now))) closed.push(head.id);
    }
    const finished = heads.filter((h) => h.status === 'complete');
    for (const old of finished.slice(FINISHED_HEADS_KEPT)) {
      if (leadership.signal.aborted) break;
      await this.#store.delete(headKey(old.id));
    }
    return closed;
  }

  async #close(leadership: Leadership, head: GameDayHead, why: string, now: number): Promise<boolean> {
    const ids = new Set(head.faults);
    for (const fault of this.#plane.faults.all()) if (fault.origin === 'runtime' && fault.spec.description === `experiment:${head.experiment}`) ids.add(fault.id);
    const removed = [...ids].filter((id) => this.#plane.faults.delete(id));
    const at = new Date(now).toISOString();
    const reason = `${why}; closed by the leader ${this.#self}${removed.length ? `, which removed its faults ${removed.join(', ')}` : ''}`;
    if (leadership.signal.aborted) return false;
    // Compare-and-swap: a heartbeat written meanwhile is read again, and the close is not lost to it
    // (its faults are gone already: the runner's next renewal is refused, its next head write a 409).
    const written = await updateHead(this.#store, head.id, (stored) =>
      stored?.status !== 'running' ? 'it ended meanwhile' : { ...stored, status: 'complete', outcome: 'error', reason, finishedAt: at, faults: [], closedBy: this.#self });
    if ('refused' in written) return false;
    this.#log.warn({ run: head.id, experiment: head.experiment, removed }, `game day closed: ${reason}`);
    return true;
  }
}
