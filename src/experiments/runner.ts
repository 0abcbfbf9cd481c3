// `faultline run`: one game day (run/game-day.ts sequences its phases and parts), or with --dry-run
// the experiment resolved against the mesh and nothing injected. Everything is recorded in the run's
// directory — journal, every event of every sidecar, every request of the load (open model unless the experiment asks for closed), each sidecar's
// metrics every second — so the analysis can recompute everything without the mesh.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dryRun } from './dry-run.ts';
import type { RunResult } from './journal.ts';
import { ClosedLoopLoad } from './loads/closed-loop.ts';
import { OpenModelLoad } from './loads/open-model.ts';
import { Progress } from './progress.ts';
import { GameDay } from './run/game-day.ts';
import { parseExperiment, type Experiment } from './spec.ts';

export interface RunOptions {
  readonly file: string;
  readonly seed?: number;
  /** Reports go to <out>/<experiment>/<timestamp>/. */
  readonly out: string;
  readonly dryRun?: boolean;
  /** Where progress and phase lines go (a TTY gets a live status line). */
  readonly stream?: NodeJS.WriteStream;
  /**
   * Writes the reports of the finished run and returns the line its summary ends with. The caller
   * chooses it (the CLI passes the reports' writer), so the runner never depends on the analysis.
   */
  readonly report?: (dir: string) => Promise<string>;
  /** Aborted when the run must halt from outside (its scheduler's control plane stopped leading). */
  readonly signal?: AbortSignal;
  /** The control plane whose scheduler started it (in its head in the control plane). */
  readonly scheduledBy?: string;
  /** The experiment as read from `file`, changed (the console runs it against the control plane serving it). */
  readonly experiment?: Experiment;
  /** Called once the run is over (faults removed, journal and head complete), before its reports are written. */
  readonly ended?: () => void;
}

export async function runExperiment(options: RunOptions): Promise<RunResult> {
  const file = resolve(options.file);
  const experiment = options.experiment ?? parseExperiment(await readFile(file, 'utf8'), options.file);
  const seed = options.seed ?? experiment.seed ?? Math.floor(Math.random() * 2 ** 31);
  const stream = options.stream ?? process.stdout;
  const progress = new Progress(stream);
  if (options.dryRun) return dryRun(experiment, file, seed, progress);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(resolve(options.out), experiment.name, stamp);
  await mkdir(dir, { recursive: true });
  await copyFile(file, join(dir, 'experiment.yaml'));
  return new GameDay({ experiment, file, seed, dir, progress, stream, load: experiment.load.model === 'closed' ? new ClosedLoopLoad() : new OpenModelLoad(), report: options.report, signal: options.signal, scheduledBy: options.scheduledBy, ended: options.ended }).run();
}
