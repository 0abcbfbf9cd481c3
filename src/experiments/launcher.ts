// The experiments of a directory for the control plane's API (control/game-day-runs.ts): listed with
// their schedules (next runs, blackouts), dry-run and run against the control plane that serves the API
// — whatever target their file names: a game day started from the console is one of that mesh — in the
// control plane's process, recorded under the reports directory as the scheduler's runs are.
import { randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ExperimentEntry, GameDayLauncher, PlaneTarget } from '../control/game-day-runs.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { blastRadius } from './dry-run.ts';
import { logStream } from './leader-scheduler.ts';
import type { RunResult } from './journal.ts';
import { runExperiment, type RunOptions } from './runner.ts';
import { upcoming } from './schedule.ts';
import { methodLength, parseExperiment, targetsOf, type Experiment } from './spec.ts';

/** Next runs shown per scheduled experiment. */
const NEXT_RUNS = 3;

/** `tokenFile`: the control plane's admin token (else FAULTLINE_TOKEN), for the runs' calls to it. */
export function directoryLauncher(dir: string, reportsDir: string, options: { report?: RunOptions['report']; tokenFile?: string | undefined; log?: Logger } = {}): GameDayLauncher {
  const log = options.log ?? silentLogger;
  const tokenFile = options.tokenFile;
  const read = async (): Promise<Map<string, { file: string; experiment: Experiment }>> => {
    const found = new Map<string, { file: string; experiment: Experiment }>();
    for (const name of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
      const file = resolve(dir, name);
      try {
        const experiment = parseExperiment(await readFile(file, 'utf8'), file);
        found.set(experiment.name, { file, experiment });
      } catch (error) {
        log.warn({ file, error: (error as Error).message }, 'an experiment file does not parse: not listed');
      }
    }
    return found;
  };
  const find = async (name: string) => {
    const entry = (await read()).get(name);
    if (!entry) throw new Error(`no experiment "${name}" in ${dir}`);
    return entry;
  };
  const against = (experiment: Experiment, target: PlaneTarget): Experiment => ({ ...experiment, target: { control: target.control, ...(tokenFile !== undefined && { tokenFile: resolve(tokenFile) }), ...(target.ca !== undefined && { ca: resolve(target.ca) }) } });
  return {
    reportsDir: resolve(reportsDir),
    async list() {
      return [...(await read()).values()].map(({ experiment }) => entryOf(experiment));
    },
    async dryRun(name, target, asked) {
      const { file, experiment } = await find(name);
      // As `faultline run`: the given seed, else the experiment's, else a new one (then handed to the run).
      const seed = asked ?? experiment.seed ?? randomInt(2 ** 31);
      return { lines: await blastRadius(against(experiment, target), file, seed), seed };
    },
    async run(name, target, signal, seed, ended) {
      const { file, experiment } = await find(name);
      const result: RunResult = await runExperiment({ file, out: reportsDir, report: options.report, signal, experiment: against(experiment, target), stream: logStream(log, name), ended, ...(seed !== undefined && { seed }) });
      log.info({ experiment: name, outcome: result.outcome, dir: result.dir }, 'game day started from the API ended');
    },
  };
}

function entryOf(e: Experiment): ExperimentEntry {
  const s = e.schedule;
  return {
    name: e.name,
    description: e.description,
    targets: targetsOf(e),
    phases: { warmup: e.phases.warmup, baseline: e.phases.baseline, method: methodLength(e), recovery: e.phases.recovery },
    halts: e.halt.map((h) => (h.availability ? `availability of ${h.availability.service} below ${h.availability.below} % for ${h.availability.for} ms` : `p${h.latency!.percentile} of ${h.latency!.service} above ${h.latency!.above} ms for ${h.latency!.for} ms`)),
    schedule: s
      ? {
          cron: s.cron,
          timezone: s.timezone,
          windows: s.windows.map((w) => `${w.days?.join(',') ?? 'every day'} ${w.from}–${w.to}`),
          blackouts: s.blackouts.map((b) => ({ from: b.from, to: b.to })),
          next: upcoming(s, new Date(), NEXT_RUNS).map((d) => d.toISOString()),
        }
      : null,
  };
}
