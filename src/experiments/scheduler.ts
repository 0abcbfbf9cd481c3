// The game-day scheduler: runs each scheduled experiment at its allowed cron times, one loop per
// experiment, and never two experiments with overlapping targets (a service in common) at once.
//
// Time comes from an injectable Clock, so that tests drive a virtual one. What happened is kept in a
// state file (JSON, written atomically: temp file in the same directory, fsync, rename, fsync of the
// directory) at every transition of a run: when it is due (startedAt null), when it starts (startedAt
// set) and when it finishes (finishedAt and its outcome). A record whose finishedAt is null is in
// flight: its outcome reads "inconclusive" with the reason "due", "waiting for …" or "running" until
// it ends.
//
// Next run and restarts. An experiment's next run is its first allowed time strictly after its last
// *scheduled* time (the last record's scheduledFor, whatever its outcome), or after now when it never
// ran — so a run that happened is never repeated after a restart. Times that passed while nobody ran
// them (the scheduler was down, or a previous run or wait of the same experiment overran them) are
// not all run late: the latest is run once, now, if it is at most 5 minutes ago (GRACE) and now is
// still allowed; else it is recorded `skipped`. Earlier ones are recorded `skipped` (the 20 latest;
// any before them are only counted in the log). The reason is 'missed while the scheduler was down'
// for times found when a loop starts, and 'missed while a previous run or wait was still going'
// afterwards. On open, a record that started but never finished (the process died mid-run) is marked
// `error`, 'the scheduler stopped during the run', and one that was due but never started is marked
// `skipped`, 'the scheduler stopped before the run started'.
//
// Overlap. When an experiment is due while one on overlapping targets runs: with `overlap: skip` the
// run is recorded `skipped` (the reason names the running experiment); with `overlap: wait` it waits
// for it to finish, at most `maxWait`, then runs (startedAt is when it really started) or is recorded
// `skipped`. A run that starts more than a second after its time must still be allowed then
// (inside a window, outside blackouts), or it is skipped. `run` throwing is an `error` outcome with
// its message. The history keeps the last 1000 records (of every experiment, configured or not);
// `experiments` lists the configured ones only.
import { allowedAt, allowedTimes, upcoming, type ScheduleConfig } from './schedule.ts';
import { fileState, loadState, type RunRecord, type SchedulerState, type StateKeeper } from './scheduler-state.ts';

export { fileState, type RunRecord, type SchedulerState, type StateKeeper } from './scheduler-state.ts';

export interface Clock {
  now(): Date;
  /** resolves at `at` (or when signal aborts) */
  sleepUntil(at: Date, signal: AbortSignal): Promise<void>;
}

/** setTimeout's longest delay; longer sleeps are taken in steps. */
const MAX_TIMER = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => new Date(),
  sleepUntil: (at, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const arm = (): void => {
        const wait = at.getTime() - Date.now();
        if (wait <= 0) return done();
        timer = setTimeout(arm, Math.min(wait, MAX_TIMER));
      };
      signal.addEventListener('abort', done);
      arm();
    }),
};

export interface ScheduledExperiment {
  readonly name: string;
  /** services it injects faults into */
  readonly targets: readonly string[];
  readonly schedule: ScheduleConfig;
}

export interface SchedulerOptions {
  experiments: readonly ScheduledExperiment[];
  /** Where the state is kept: a file (`stateFile`) or any StateKeeper (`state`). */
  stateFile?: string;
  state?: StateKeeper;
  clock?: Clock;
  /** Runs one experiment; resolves with its outcome (the scheduler never runs two with overlapping targets at once). */
  run: (experiment: ScheduledExperiment, scheduledFor: Date) => Promise<{ outcome: RunRecord['outcome']; reason?: string }>;
  log?: (line: string) => void;
}

/** How late a missed time may still be run. */
export const GRACE = 5 * 60_000;
/** How late a run may start before it must check again that it is allowed. */
const LATE = 1_000;
const MISSED_RECORDED = 20;
const HISTORY_LIMIT = 1000;

export const MISSED_DOWN = 'missed while the scheduler was down';
export const MISSED_BUSY = 'missed while a previous run or wait was still going';
export const STOPPED_DURING_RUN = 'the scheduler stopped during the run';
export const STOPPED_BEFORE_START = 'the scheduler stopped before the run started';

/** A running experiment: `done` resolves when it is released. */
interface Claim {
  readonly experiment: ScheduledExperiment;
  readonly done: Promise<void>;
  release(): void;
}

export class Scheduler {
  readonly #experiments: readonly ScheduledExperiment[];
  readonly #state: StateKeeper;
  readonly #clock: Clock;
  readonly #run: SchedulerOptions['run'];
  readonly #log: (line: string) => void;
  #history: RunRecord[];
  readonly #last = new Map<string, RunRecord>();
  readonly #next = new Map<string, Date | null>();
  readonly #running = new Map<string, Claim>();
  #writes: Promise<void> = Promise.resolve();
  #stop: AbortController | undefined;
  #loops: Promise<void>[] = [];

  private constructor(options: SchedulerOptions, keeper: StateKeeper, state: SchedulerState) {
    this.#experiments = options.experiments;
    this.#state = keeper;
    this.#clock = options.clock ?? systemClock;
    this.#run = options.run;
    this.#log = options.log ?? (() => {});
    this.#history = state.history;
    for (const experiment of this.#experiments) {
      const stored = state.experiments[experiment.name]?.lastRun ?? null;
      // The same record is in the history (unless trimmed from it): one object, updated in both.
      const last = stored && (this.#history.findLast((r) => r.name === stored.name && r.scheduledFor === stored.scheduledFor) ?? stored);
      if (last) this.#last.set(experiment.name, last);
    }
  }

  /** Loads the state file if present, and closes the records a crash left open. */
  static async open(options: SchedulerOptions): Promise<Scheduler> {
    const names = new Set<string>();
    for (const experiment of options.experiments) {
      if (names.has(experiment.name)) throw new Error(`two scheduled experiments are named "${experiment.name}"`);
      names.add(experiment.name);
    }
    const keeper = options.state ?? (options.stateFile !== undefined ? fileState(options.stateFile) : undefined);
    if (!keeper) throw new Error('the scheduler needs a stateFile or a state keeper');
    const scheduler = new Scheduler(options, keeper, await loadState(keeper));
    let repaired = false;
    for (const record of scheduler.#records()) {
      if (record.finishedAt !== null || record.outcome === 'skipped' || record.reason === STOPPED_DURING_RUN) continue;
      if (record.startedAt !== null) {
        record.outcome = 'error';
        record.reason = STOPPED_DURING_RUN;
      } else {
        record.outcome = 'skipped';
        record.reason = STOPPED_BEFORE_START;
      }
      scheduler.#log(`${record.name}: the run scheduled for ${record.scheduledFor} never finished: ${record.outcome} (${record.reason})`);
      repaired = true;
    }
    const now = scheduler.#clock.now();
    for (const experiment of options.experiments) scheduler.#next.set(experiment.name, scheduler.#upcoming(experiment, now, 1)[0] ?? null);
    if (repaired) await scheduler.#write();
    return scheduler;
  }

  /** Upcoming runs of every experiment, soonest first: what `faultline schedule --list` prints. */
  upcoming(count: number): { name: string; at: Date }[] {
    const now = this.#clock.now();
    return this.#experiments
      .flatMap((e) => this.#upcoming(e, now, count).map((at) => ({ name: e.name, at })))
      .sort((a, b) => a.at.getTime() - b.at.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .slice(0, Math.max(0, count));
  }

  /** Runs due experiments until stop(): each at its next allowed cron time after its last scheduled run. */
  start(): void {
    if (this.#stop) throw new Error('the scheduler is already started');
    const stop = new AbortController();
    this.#stop = stop;
    this.#loops = this.#experiments.map((e) =>
      this.#loop(e, stop.signal).catch((error: unknown) => this.#log(`${e.name}: the scheduler loop failed: ${(error as Error).message}`)),
    );
  }

  /** Stops scheduling; waits for running experiments to finish. */
  async stop(): Promise<void> {
    const stop = this.#stop;
    if (!stop) return;
    stop.abort();
    await Promise.all(this.#loops);
    await this.#writes;
    this.#stop = undefined;
    this.#loops = [];
  }

  get state(): SchedulerState {
    return structuredClone(this.#snapshot());
  }

  /** `count` allowed times of an experiment after its last scheduled time and after `now`. */
  #upcoming(experiment: ScheduledExperiment, now: Date, count: number): Date[] {
    const last = this.#last.get(experiment.name);
    const after = last && Date.parse(last.scheduledFor) > now.getTime() ? new Date(last.scheduledFor) : now;
    return upcoming(experiment.schedule, after, count);
  }

  async #loop(experiment: ScheduledExperiment, signal: AbortSignal): Promise<void> {
    const { name, schedule } = experiment;
    let missedReason = MISSED_DOWN;
    while (!signal.aborted) {
      const now = this.#clock.now();
      const last = this.#last.get(name);
      let next: Date | null = null;
      if (!last) {
        next = upcoming(schedule, now, 1)[0] ?? null;
      } else {
        const missed: Date[] = [];
        let count = 0;
        for (const time of allowedTimes(schedule, new Date(last.scheduledFor))) {
          if (time.getTime() > now.getTime()) {
            next = time;
            break;
          }
          count++;
          missed.push(time);
          if (missed.length > MISSED_RECORDED) missed.shift();
        }
        const latest = missed.pop();
        if (latest) {
          if (count > MISSED_RECORDED) this.#log(`${name}: ${count - MISSED_RECORDED} earlier missed times not recorded (${missedReason})`);
          for (const time of missed) this.#skip(name, time, missedReason);
          const late = now.getTime() - latest.getTime();
          if (late <= GRACE && allowedAt(schedule, now)) {
            this.#log(`${name}: the run scheduled for ${latest.toISOString()} was ${missedReason}; running it now, ${formatMs(late)} late (within the ${formatMs(GRACE)} grace)`);
            missedReason = MISSED_BUSY;
            await this.#due(experiment, latest, signal);
            continue;
          }
          this.#skip(name, latest, missedReason);
        }
      }
      missedReason = MISSED_BUSY;
      this.#next.set(name, next);
      await this.#persist();
      if (!next) {
        this.#log(`${name}: no further allowed run time; not scheduling it any more`);
        return;
      }
      this.#log(`${name}: next run at ${next.toISOString()}`);
      await this.#clock.sleepUntil(next, signal);
      if (signal.aborted) return;
      if (this.#clock.now().getTime() < next.getTime()) continue;
      await this.#due(experiment, next, signal);
    }
  }

  /** One due run: waits or skips for overlapping ones, runs it, records each step. */
  async #due(experiment: ScheduledExperiment, scheduledFor: Date, signal: AbortSignal): Promise<void> {
    const { name, schedule } = experiment;
    const record = this.#add({ name, scheduledFor: scheduledFor.toISOString(), startedAt: null, finishedAt: null, outcome: 'inconclusive', reason: 'due' });
    this.#log(`${name}: due (scheduled for ${record.scheduledFor})`);
    // Checked and claimed with no await in between: of two overlapping runs due at once, the first claims.
    const blocker = this.#blocker(experiment);
    const late = blocker ? undefined : this.#tooLate(experiment, scheduledFor);
    const claim = blocker || late ? undefined : this.#claim(experiment);
    await this.#persist();
    if (late) return this.#skipped(record, `too late to start: ${late}`);
    if (claim) return this.#execute(experiment, record, scheduledFor, claim);
    const first = blocker!.experiment;
    if (schedule.overlap === 'skip') return this.#skipped(record, `${first.name} was running on ${shared(experiment, first).join(', ')}`);
    const deadline = new Date(this.#clock.now().getTime() + schedule.maxWait);
    record.reason = `waiting for ${first.name}`;
    this.#log(`${name}: waiting for ${first.name} to finish (it runs on ${shared(experiment, first).join(', ')}), until ${deadline.toISOString()} at the latest`);
    await this.#persist();
    for (;;) {
      const running = this.#blocker(experiment);
      if (!running) break;
      if (this.#clock.now().getTime() >= deadline.getTime()) {
        return this.#skipped(record, `waited ${formatMs(schedule.maxWait)} (maxWait) for ${running.experiment.name}, which was still running`);
      }
      const timeout = new AbortController();
      const cancel = (): void => timeout.abort();
      signal.addEventListener('abort', cancel);
      await Promise.race([running.done, this.#clock.sleepUntil(deadline, timeout.signal)]);
      timeout.abort();
      signal.removeEventListener('abort', cancel);
      if (signal.aborted) return this.#skipped(record, `the scheduler stopped while it waited for ${running.experiment.name}`);
    }
    // Free: checked just above, claimed now, with no await in between.
    const tooLate = this.#tooLate(experiment, scheduledFor);
    if (tooLate) return this.#skipped(record, `waited for ${first.name}; by then ${tooLate}`);
    return this.#execute(experiment, record, scheduledFor, this.#claim(experiment));
  }

  async #execute(experiment: ScheduledExperiment, record: RunRecord, scheduledFor: Date, claim: Claim): Promise<void> {
    try {
      record.startedAt = this.#clock.now().toISOString();
      record.reason = 'running';
      this.#log(`${experiment.name}: started (scheduled for ${record.scheduledFor})`);
      await this.#persist();
      let result: { outcome: RunRecord['outcome']; reason?: string };
      try {
        result = await this.#run(experiment, scheduledFor);
      } catch (error) {
        result = { outcome: 'error', reason: error instanceof Error ? error.message : String(error) };
      }
      claim.release();
      record.finishedAt = this.#clock.now().toISOString();
      record.outcome = result.outcome;
      if (result.reason === undefined) delete record.reason;
      else record.reason = result.reason;
      this.#log(`${experiment.name}: finished: ${record.outcome}${record.reason === undefined ? '' : ` (${record.reason})`}`);
      await this.#persist();
    } finally {
      claim.release();
    }
  }

  /** A running experiment that shares a target with this one. */
  #blocker(experiment: ScheduledExperiment): Claim | undefined {
    for (const claim of this.#running.values()) {
      if (claim.experiment !== experiment && shared(experiment, claim.experiment).length > 0) return claim;
    }
    return undefined;
  }

  /** Why a run that starts late must not start now, if it must not. */
  #tooLate(experiment: ScheduledExperiment, scheduledFor: Date): string | undefined {
    const now = this.#clock.now();
    if (now.getTime() - scheduledFor.getTime() <= LATE || allowedAt(experiment.schedule, now)) return undefined;
    return `${now.toISOString()} is outside its windows or inside a blackout`;
  }

  #claim(experiment: ScheduledExperiment): Claim {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const claim: Claim = {
      experiment,
      done,
      release: () => {
        if (this.#running.get(experiment.name) === claim) this.#running.delete(experiment.name);
        release();
      },
    };
    this.#running.set(experiment.name, claim);
    return claim;
  }

  #add(record: RunRecord): RunRecord {
    this.#history.push(record);
    if (this.#history.length > HISTORY_LIMIT) this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
    this.#last.set(record.name, record);
    return record;
  }

  #skip(name: string, time: Date, reason: string): void {
    this.#add({ name, scheduledFor: time.toISOString(), startedAt: null, finishedAt: null, outcome: 'skipped', reason });
    this.#log(`${name}: skipped the run scheduled for ${time.toISOString()}: ${reason}`);
  }

  /** Closes a due record as skipped. */
  async #skipped(record: RunRecord, reason: string): Promise<void> {
    record.outcome = 'skipped';
    record.reason = reason;
    this.#log(`${record.name}: skipped the run scheduled for ${record.scheduledFor}: ${reason}`);
    await this.#persist();
  }

  *#records(): Iterable<RunRecord> {
    const seen = new Set<RunRecord>();
    for (const record of [...this.#history, ...this.#last.values()]) {
      if (!seen.has(record)) {
        seen.add(record);
        yield record;
      }
    }
  }

  #snapshot(): SchedulerState {
    const experiments: SchedulerState['experiments'] = {};
    for (const { name } of this.#experiments) {
      experiments[name] = { lastRun: this.#last.get(name) ?? null, nextRun: this.#next.get(name)?.toISOString() ?? null };
    }
    return { experiments, history: this.#history };
  }

  /** Writes the state, after any write under way; a failure is logged, and the scheduler goes on. */
  #persist(): Promise<void> {
    this.#writes = this.#writes.then(
      () => this.#write(),
      () => this.#write(),
    ).catch((error: unknown) => this.#log(`could not write ${this.#state.where}: ${(error as Error).message}`));
    return this.#writes;
  }

  async #write(): Promise<void> {
    await this.#state.write(`${JSON.stringify(this.#snapshot(), null, 2)}\n`);
  }
}

function shared(a: ScheduledExperiment, b: ScheduledExperiment): string[] {
  return a.targets.filter((t) => b.targets.includes(t));
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms} ms`;
}
