// The scheduler under the control planes' leadership: `faultline control --experiments DIR` gives every
// replica the same scheduled experiments, and the one that leads runs them — one replica at a time, as
// the issue of once-only work asks. Its state (last and next runs, the history) is kept in the shared
// store under `schedule/state`, written only while it leads (a write guarded by the election), so the
// next leader carries on from it: a run the last leader had started and never finished is closed as
// `error` ("the scheduler stopped during the run"), a time missed within the grace is run at once, and
// nothing that ran is run again. Game days run in the leader's process; when it stops leading they halt
// (rolled back as any halt is), and when it dies their faults end with their leases and the new
// leader closes their heads (control/head-sweep.ts).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SCHEDULE_KEY } from '../control/game-days-api.ts';
import type { Leadership } from '../control/election.ts';
import type { RunningControlPlane } from '../control/server.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import type { RunResult } from './journal.ts';
import { Scheduler, type ScheduledExperiment, type StateKeeper } from './scheduler.ts';
import { parseExperiment, targetsOf } from './spec.ts';

export interface ScheduledFile extends ScheduledExperiment {
  readonly file: string;
}

/** Runs one scheduled experiment file (the CLI: runExperiment with the reports' writer). */
export type RunScheduled = (file: string, options: { signal: AbortSignal; scheduledBy: string; stream: NodeJS.WriteStream }) => Promise<RunResult>;

/** The scheduled experiments of a directory; an invalid file throws (with its file, line and field), so a control plane given one does not start. */
export async function scheduledIn(dir: string): Promise<ScheduledFile[]> {
  const names = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const scheduled: ScheduledFile[] = [];
  for (const name of names) {
    const file = join(dir, name);
    const experiment = parseExperiment(await readFile(file, 'utf8'), file);
    if (experiment.schedule) scheduled.push({ name: experiment.name, file, targets: targetsOf(experiment), schedule: experiment.schedule });
  }
  return scheduled;
}

/** The scheduler's state in the store, written only while `leadership` holds. */
export function leaderState(control: Pick<RunningControlPlane, 'store'>, leadership: Leadership): StateKeeper {
  return {
    where: `the schedule in the store (${SCHEDULE_KEY})`,
    read: () => control.store.get(SCHEDULE_KEY),
    async write(text) {
      if (!(await leadership.put(SCHEDULE_KEY, text))) throw new Error('this control plane no longer leads');
    },
  };
}

/**
 * Runs the experiments' schedules whenever this control plane leads. `stop()` (the process is closing)
 * halts a running game day, waits for its rollback, and schedules nothing more.
 */
export function scheduleUnderLeadership(control: RunningControlPlane, experiments: readonly ScheduledFile[], run: RunScheduled, log: Logger = silentLogger): { stop(): Promise<void> } {
  const files = new Map(experiments.map((e) => [e.name, e.file]));
  const closing = new AbortController();
  let current: Promise<Scheduler | undefined> = Promise.resolve(undefined);
  const unsubscribe = control.leadership.onLead((leadership) => {
    const signal = AbortSignal.any([leadership.signal, closing.signal]);
    current = (async () => {
      const scheduler = await Scheduler.open({
        experiments,
        state: leaderState(control, leadership),
        log: (line) => log.info({ scheduler: control.url }, line),
        run: async (experiment) => {
          const stream = logStream(log, experiment.name);
          const result = await run(files.get(experiment.name)!, { signal, scheduledBy: control.url, stream });
          return { outcome: result.outcome, ...(result.journal.reason && { reason: result.journal.reason }) };
        },
      });
      if (signal.aborted) return undefined;
      log.info({ experiments: experiments.map((e) => e.name) }, 'this control plane leads: scheduling');
      scheduler.start();
      // Leadership lost (or the process closing): no new run starts, and a running one halts.
      signal.addEventListener('abort', () => void scheduler.stop(), { once: true });
      return scheduler;
    })().catch((error: unknown) => {
      log.error({ error: (error as Error).message }, 'the scheduler could not start under this leadership');
      return undefined;
    });
  });
  return {
    async stop() {
      unsubscribe();
      closing.abort(new Error('the control plane is closing'));
      await (await current)?.stop();
    },
  };
}

/** A run's progress and summary as log lines of the control plane. */
export function logStream(log: Logger, experiment: string): NodeJS.WriteStream {
  return {
    isTTY: false,
    write(chunk: string | Uint8Array) {
      for (const line of String(chunk).split('\n')) if (line.trim()) log.info({ experiment }, line.trim());
      return true;
    },
  } as unknown as NodeJS.WriteStream;
}
