// A run's journal as it is kept: phases with their notes and outcomes, each change saved atomically
// at once, so that a runner killed at any moment leaves a readable journal marked incomplete.
import { join } from 'node:path';
import { writeFileAtomic } from '../../atomic-write.ts';
import type { Journal, RunOutcome } from '../journal.ts';
import { controlUrls, type Experiment } from '../spec.ts';
import { faultBody } from '../steps.ts';
import { isoAt, type Clock } from '../../clock.ts';

/** Where phases and notes are shown as they happen (the progress line). */
export interface RunLog {
  phase(name: string): void;
  line(text: string): void;
}

export class RunJournal {
  /** The journal as saved; the parts that own a section (faults, halts, rollback, verdicts) write it. */
  readonly data: Journal;
  readonly #file: string;
  readonly #log: RunLog;
  readonly #clock: Clock;
  #current: Journal['phases'][number] | undefined;
  #onSave: ((data: Journal, phase: string | null) => void) | undefined;

  constructor(dir: string, data: Journal, log: RunLog, clock: Clock) {
    this.#file = join(dir, 'journal.json');
    this.data = data;
    this.#log = log;
    this.#clock = clock;
  }

  /** A new run's journal: nothing happened yet, every fault of the method listed as it will be put. */
  static forRun(dir: string, experiment: Experiment, file: string, seed: number, log: RunLog, clock: Clock): RunJournal {
    return new RunJournal(dir, {
      experiment: experiment.name,
      file,
      seed,
      status: 'running',
      outcome: null,
      reason: null,
      startedAt: isoAt(clock.now()),
      finishedAt: null,
      target: 'mesh' in experiment.target ? `mesh ${experiment.target.mesh}` : `control ${controlUrls(experiment.target.control).join(',')}`,
      phases: [],
      faults: experiment.method.map((step, i) => ({ id: step.fault.id, step: i, injectedAt: null, removedAt: null, renewals: 0, spec: faultBody(experiment, step, seed) })),
      halts: [],
      rollback: null,
      verdicts: [],
      windows: [],
      load: null,
    }, log, clock);
  }

  /** Called after every change, with the phase it is in (a head in the control plane follows it: run/head.ts). */
  onSave(listener: (data: Journal, phase: string | null) => void): void {
    this.#onSave = listener;
  }

  get phaseName(): string | null {
    return this.#current?.name ?? null;
  }

  save(): Promise<void> {
    this.#onSave?.(this.data, this.phaseName);
    return writeFileAtomic(this.#file, `${JSON.stringify(this.data, null, 2)}\n`, 0o644);
  }

  /** Ends the current phase and starts `name`. */
  async phase(name: string): Promise<void> {
    const now = isoAt(this.#clock.now());
    if (this.#current) this.#current.endedAt = now;
    this.#current = { name, startedAt: now, endedAt: null, outcome: null, notes: [] };
    this.data.phases.push(this.#current);
    this.#log.phase(name);
    await this.save();
  }

  /** A note on the current phase, shown as it is written. */
  async note(text: string): Promise<void> {
    this.#current?.notes.push(text);
    this.#log.line(text);
    await this.save();
  }

  /** How the current phase ended ('steady', 'done', 'verified', ...); saved with the next change. */
  conclude(outcome: string): void {
    if (this.#current) this.#current.outcome = outcome;
  }

  /** The run is over: its outcome, the end of the last phase, marked complete. */
  async finish(outcome: RunOutcome): Promise<void> {
    this.data.outcome = outcome;
    this.data.status = 'complete';
    this.data.finishedAt = isoAt(this.#clock.now());
    if (this.#current) this.#current.endedAt = this.data.finishedAt;
    await this.save();
  }
}
