// A game day's head in the control plane (control/heads.ts): written at every change of its journal
// and every HEARTBEAT_MS while it runs, so that every replica — and the leader, which closes the runs
// of runners that went quiet — knows what runs, in which phase, with which faults in force. Writes are
// coalesced (one in flight, the latest state next) and never hold the run up; a failure is noted once.
import { HEARTBEAT_MS, runId, thisRunner, type GameDayHead } from '../../control/heads.ts';
import type { Journal } from '../journal.ts';
import { isoAt, type Clock } from '../../clock.ts';

export interface HeadSink {
  putHead(head: GameDayHead): Promise<void>;
}

export class HeadReporter {
  readonly id: string;
  readonly #sink: HeadSink;
  readonly #clock: Clock;
  readonly #base: Pick<GameDayHead, 'runner' | 'dir'> & { scheduledBy?: string };
  readonly #note: (text: string) => void;
  #latest: { data: Journal; phase: string | null } | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  #failed = false;
  #stopHeartbeat: (() => void) | undefined;
  /** The leader closed this run (409): its faults are gone; the run should halt. */
  #closed: string | undefined;

  readonly #onClosed: (reason: string) => void;
  readonly #live: (() => GameDayHead['live']) | undefined;

  constructor(sink: HeadSink, options: { experiment: string; dir: string; scheduledBy?: string | undefined; clock: Clock; note: (text: string) => void; onClosed: (reason: string) => void; live?: () => GameDayHead['live'] }) {
    this.#sink = sink;
    this.#clock = options.clock;
    this.id = runId(options.experiment, options.dir.split(/[\\/]/).pop() ?? '');
    this.#base = { runner: thisRunner(), dir: options.dir, ...(options.scheduledBy !== undefined && { scheduledBy: options.scheduledBy }) };
    this.#note = options.note;
    this.#onClosed = options.onClosed;
    this.#live = options.live;
  }

  /** Why the leader closed the run, if it did. */
  get closed(): string | undefined {
    return this.#closed;
  }

  /** The journal changed: its head is written (soon). */
  update(data: Journal, phase: string | null): void {
    this.#latest = { data, phase };
    if (!this.#stopHeartbeat && data.status === 'running') this.#stopHeartbeat = this.#clock.every(HEARTBEAT_MS, () => this.#write());
    this.#write();
  }

  /** The last write, after the journal completed: waited for, so that the head says how it ended. */
  async finish(): Promise<void> {
    this.#stopHeartbeat?.();
    this.#write();
    while (this.#writing) await this.#writing;
  }

  #write(): void {
    if (this.#writing) {
      this.#again = true;
      return;
    }
    const latest = this.#latest;
    if (!latest) return;
    this.#writing = this.#sink
      .putHead(this.#head(latest.data, latest.phase))
      .catch((error: Error) => {
        if (/answered 409/.test(error.message)) {
          if (this.#closed === undefined) {
            this.#closed = error.message.replace(/^.*answered 409: /, '');
            this.#onClosed(this.#closed);
          }
        } else if (!this.#failed) {
          this.#failed = true;
          this.#note(`the game day's head could not be written to the control plane (it goes on; its journal is here): ${error.message}`);
        }
      })
      .finally(() => {
        this.#writing = undefined;
        if (this.#again) {
          this.#again = false;
          this.#write();
        }
      });
  }

  #head(data: Journal, phase: string | null): GameDayHead {
    const live = data.status === 'running' ? this.#live?.() : undefined;
    return {
      id: this.id,
      experiment: data.experiment,
      status: data.status,
      outcome: data.outcome,
      reason: data.reason,
      phase,
      startedAt: data.startedAt,
      finishedAt: data.finishedAt,
      heartbeatAt: isoAt(this.#clock.now()),
      ...this.#base,
      faults: data.faults.filter((f) => f.injectedAt !== null && f.removedAt === null).map((f) => f.id),
      ...(data.verdicts.length > 0 && { verdicts: data.verdicts.slice(0, 200).map((v) => ({ hypothesis: v.hypothesis, window: v.window, outcome: v.outcome, measured: v.measured })) }),
      ...(live && { live }),
    };
  }
}
