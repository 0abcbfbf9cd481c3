// One game day, as an object with named parts — the journal, the load, the recording, fault leasing,
// halt watching, rollback — that this module only sequences: preflight → warm-up → baseline (steady
// state must hold before any fault, else `inconclusive`) → method → rollback (always: every fault
// removed, then verified gone on every sidecar) → recovery → verdicts, summary and the caller's reports.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { LIVE_WINDOW_MS, type GameDayHead } from '../../control/heads.ts';
import { up, type Mesh } from '../../control/up.ts';
import { percentile, succeeded } from '../../measures.ts';
import { isSample, type Load, type LoadRun } from '../load.ts';
import { EXIT_CODES, type RunOutcome, type RunResult } from '../journal.ts';
import { MeshClient, targetClient } from '../mesh-client.ts';
import type { Progress } from '../progress.ts';
import { Recorder } from '../recorder.ts';
import { methodLength, type Experiment } from '../spec.ts';
import { summarise } from '../summary.ts';
import { expectVerdict, steadyStateVerdict, type Recording, type Window } from '../verdicts.ts';
import { isoAt, systemClock, type Clock } from '../../clock.ts';
import { HaltWatch, haltStandings } from './halt.ts';
import { HeadReporter } from './head.ts';
import { RunJournal } from './journal.ts';
import { FaultLeases } from './leases.ts';
import { loadTarget, preflight } from './preflight.ts';
import { rollBack } from './rollback.ts';

export interface GameDayOptions {
  readonly experiment: Experiment;
  /** The experiment file, absolute: a mesh target is found beside it. */
  readonly file: string;
  readonly seed: number;
  /** The run's directory: journal, recording, summary and reports. */
  readonly dir: string;
  readonly progress: Progress;
  /** Where the summary goes. */
  readonly stream: NodeJS.WritableStream;
  readonly load: Load;
  /** Writes the reports of the finished run; returns the line the summary ends with. */
  readonly report?: ((dir: string) => Promise<string>) | undefined;
  readonly clock?: Clock;
  /** Aborted when the run must halt from outside (the control plane that scheduled it stopped leading). */
  readonly signal?: AbortSignal | undefined;
  /** The control plane whose scheduler started the run (in its head). */
  readonly scheduledBy?: string | undefined;
  /** Called once the run is over (faults removed, journal and head complete), before its reports are written. */
  readonly ended?: (() => void) | undefined;
}

/** The method ended because the run must halt. */
class Halted extends Error {}

export class GameDay {
  readonly #o: GameDayOptions;
  readonly #clock: Clock;
  readonly #journal: RunJournal;
  readonly #recorder: Recorder;
  readonly #halt: HaltWatch;
  #leases: FaultLeases | undefined;
  #mesh: Mesh | undefined;
  #stateDir: string | undefined;
  #client: MeshClient | undefined;
  #loadDone: Promise<LoadRun> | undefined;
  #head: HeadReporter | undefined;
  readonly #windows: Window[] = [];
  #outcome: RunOutcome = 'error';

  constructor(options: GameDayOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#journal = RunJournal.forRun(options.dir, options.experiment, options.file, options.seed, options.progress, this.#clock);
    this.#recorder = new Recorder(options.dir);
    this.#halt = new HaltWatch(this.#clock);
    const signal = options.signal;
    signal?.addEventListener('abort', () => this.#halt.halt(`stopped from outside: ${String((signal.reason as Error)?.message ?? signal.reason)}`), { once: true });
  }

  async run(): Promise<RunResult> {
    const journal = this.#journal;
    await journal.save();
    try {
      await this.#preflight();
      await this.#warmUp();
      if (!(await this.#baseline())) return await this.#finish();
      await this.#method();
      await this.#rollback();
      await this.#recovery();
      this.#outcome = 'passed'; // unless a hypothesis fails: judged in #finish()
      return await this.#finish();
    } catch (error) {
      if (error instanceof Halted) {
        journal.data.halts.push({ at: isoAt(this.#clock.now()), reason: error.message });
        await journal.note(`HALT: ${error.message}`);
        this.#outcome = 'halted';
        journal.data.reason = error.message;
      } else {
        this.#outcome = 'error';
        journal.data.reason = (error as Error).message;
        await journal.note(`error: ${(error as Error).message}`).catch(() => undefined);
      }
      return await this.#finish();
    }
  }

  /** The mesh brought up (or reached) and checked; recording started, then the load. */
  async #preflight(): Promise<void> {
    const { experiment, file } = this.#o;
    const journal = this.#journal;
    await journal.phase('preflight');
    if ('mesh' in experiment.target) {
      this.#stateDir = await mkdtemp(join(tmpdir(), 'faultline-run-'));
      this.#mesh = await up({ file: resolve(dirname(file), experiment.target.mesh), listen: '127.0.0.1:0', stateDir: this.#stateDir });
      this.#client = new MeshClient(this.#mesh.control.url, this.#mesh.token);
      await journal.note(`brought up ${experiment.target.mesh}: control plane ${this.#mesh.control.url}`);
    } else {
      this.#client = await targetClient(experiment.target, file);
      // Its head in the control planes, for every replica to see and for the leader to close if this runner dies.
      const head = new HeadReporter(this.#client, {
        experiment: experiment.name,
        dir: this.#o.dir,
        scheduledBy: this.#o.scheduledBy,
        clock: this.#clock,
        note: (text) => void journal.note(text).catch(() => undefined),
        onClosed: (reason) => this.#halt.halt(`the control plane closed this run: ${reason}`),
        live: () => this.#live(),
      });
      this.#head = head;
      journal.onSave((data, phase) => head.update(data, phase));
      head.update(journal.data, journal.phaseName);
    }
    const state = await this.#client.snapshot();
    // The config in force, kept with the recording: the analysis reads the routes' policies from it.
    await writeFile(join(this.#o.dir, 'mesh.yaml'), state.text);
    await preflight(experiment, this.#client, state.version, (text) => journal.note(text));
    const target = loadTarget(experiment, state.snapshot);

    // Recording starts before the load: every event from here on, every response, metrics each second.
    // The load waits until the sidecars' request.done flow into the recording (they keep none unread).
    await this.#recorder.start(this.#client, (reason) => this.#halt.halt(reason));
    const total = experiment.phases.warmup + experiment.phases.baseline + methodLength(experiment) + experiment.phases.recovery;
    this.#o.progress.start(total, () => ({ records: this.#recorder.load, faults: this.#leases?.inForce ?? 0 }));
    this.#loadDone = this.#o.load.run(experiment, target, total + 1_000, (r) => this.#recorder.record(r));
  }

  async #warmUp(): Promise<void> {
    await this.#journal.phase('warm-up');
    await this.#clock.sleep(this.#o.experiment.phases.warmup);
  }

  /** Whether the steady state held before any fault. */
  async #baseline(): Promise<boolean> {
    const { experiment } = this.#o;
    const journal = this.#journal;
    await journal.phase('baseline');
    const from = this.#clock.now();
    const baseline: Window = { name: 'baseline', from, to: from + experiment.phases.baseline };
    await this.#clock.sleep(experiment.phases.baseline);
    this.#windows.push(baseline);
    const verdicts = experiment.steadyState.map((h) => steadyStateVerdict(h, this.#recording(), baseline));
    journal.data.verdicts.push(...verdicts);
    const steady = verdicts.every((v) => v.outcome === 'pass');
    journal.conclude(steady ? 'steady' : 'not steady');
    if (steady) return true;
    await journal.note(`steady state did not hold before any fault: ${verdicts.filter((v) => v.outcome !== 'pass').map((v) => `${v.hypothesis} (${v.measured})`).join('; ')}`);
    this.#outcome = 'inconclusive';
    journal.data.reason = 'steady state did not hold in the baseline';
    return false;
  }

  /** Faults leased at their step times while the halt conditions are watched; ends early on a halt. */
  async #method(): Promise<void> {
    const { experiment, seed } = this.#o;
    await this.#journal.phase('method');
    const from = this.#clock.now();
    const length = methodLength(experiment);
    this.#leases = new FaultLeases({
      experiment,
      seed,
      api: this.#client!,
      journal: this.#journal,
      clock: this.#clock,
      halted: () => this.#halt.reason !== undefined,
      onFailure: (reason) => this.#halt.halt(reason),
    });
    this.#leases.start();
    this.#halt.watch(experiment, () => this.#recording());
    await this.#halt.wait(length);
    this.#windows.push({ name: 'method', from, to: Math.min(from + length, this.#clock.now()) });
    if (this.#halt.reason) throw new Halted(this.#halt.reason);
    this.#journal.conclude('done');
  }

  /** Every fault of this experiment removed through the control plane, then checked gone on each sidecar; once. */
  async #rollback(): Promise<void> {
    const journal = this.#journal;
    if (journal.data.rollback) return;
    this.#leases?.stop();
    this.#halt.stop();
    if (!this.#client) return;
    await journal.phase('rollback');
    const rollback = await rollBack(this.#o.experiment.method.map((s) => s.fault.id), this.#client, this.#clock);
    for (const record of journal.data.faults) if (record.injectedAt && !record.removedAt) record.removedAt = rollback.at;
    this.#leases?.cleared();
    journal.data.rollback = rollback;
    journal.conclude(rollback.verified ? 'verified' : 'NOT verified');
    await journal.note(rollback.verified ? 'rollback verified: no fault of this experiment is left on any sidecar' : `rollback NOT verified: ${JSON.stringify(rollback.remaining)}`);
  }

  async #recovery(): Promise<void> {
    await this.#journal.phase('recovery');
    const from = this.#clock.now();
    await this.#clock.sleep(this.#o.experiment.phases.recovery);
    this.#windows.push({ name: 'recovery', from, to: this.#clock.now() });
  }

  /** What the head shows while it runs: the load's last seconds and how close each halt condition is. */
  #live(): GameDayHead['live'] {
    const now = this.#clock.now();
    const recent = this.#recorder.load.filter((r) => isSample(r) && r.t >= now - LIVE_WINDOW_MS && r.t < now);
    const answered = recent.filter((r) => r.status > 0).map((r) => r.latencyMs).sort((a, b) => a - b);
    const failed = recent.filter((r) => !succeeded(r.status)).length;
    return {
      at: isoAt(now),
      rps: Math.round((recent.length * 10_000) / LIVE_WINDOW_MS) / 10,
      errorPct: recent.length ? Math.round((1000 * failed) / recent.length) / 10 : null,
      p99Ms: answered.length ? Math.round(percentile(answered, 99)) : null,
      halts: haltStandings(this.#o.experiment, this.#recording(), now),
    };
  }

  #recording(): Recording {
    return this.#recorder.recording(this.#o.experiment, this.#journal.data);
  }

  /** Rolled back whatever happened, load and recording stopped, verdicts, journal complete, summary. */
  async #finish(): Promise<RunResult> {
    const { experiment, dir } = this.#o;
    const journal = this.#journal;
    try {
      await this.#rollback();
    } catch (error) {
      journal.data.rollback ??= { at: isoAt(this.#clock.now()), removed: [], verified: false, remaining: { error: [(error as Error).message] } };
    }
    this.#o.load.stop();
    journal.data.load = (await this.#loadDone?.catch(() => undefined)) ?? null;
    journal.data.windows = this.#windows;
    await this.#recorder.stop();
    this.#o.progress.stop();
    const recording = this.#recording();
    if (this.#outcome !== 'inconclusive' && this.#outcome !== 'error') this.#judge(recording);
    await journal.finish(this.#outcome);
    await this.#head?.finish();
    this.#o.ended?.();
    const reports = (await this.#o.report?.(dir)) ?? '';
    const summary = summarise(journal.data, dir, recording) + reports;
    await writeFile(join(dir, 'summary.txt'), summary);
    this.#o.stream.write(summary);
    await this.#mesh?.close();
    if (this.#stateDir) await rm(this.#stateDir, { recursive: true, force: true });
    return { outcome: this.#outcome, exitCode: EXIT_CODES[this.#outcome], dir, journal: journal.data };
  }

  /** The steady state in every window after the baseline, the expectations over the method; a failed one fails the run. */
  #judge(recording: Recording): void {
    const { experiment } = this.#o;
    const verdicts = this.#journal.data.verdicts;
    const method = this.#windows.find((w) => w.name === 'method');
    for (const w of this.#windows.filter((x) => x.name !== 'baseline')) verdicts.push(...experiment.steadyState.map((h) => steadyStateVerdict(h, recording, w)));
    if (method) verdicts.push(...experiment.expect.map((e) => expectVerdict(e, experiment, recording, method)));
    if (this.#outcome !== 'halted') this.#outcome = verdicts.some((v) => v.outcome === 'fail') ? 'failed' : 'passed';
  }
}
