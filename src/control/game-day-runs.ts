// Game days started through the API (the console's Game days page): the experiments of the control
// plane's --experiments directory listed, dry-run (their blast radius) and run in this control plane's
// process against this control plane, as its scheduler runs them; and a run halted by closing its head.
// The runner is injected (the CLI passes experiments/launcher.ts): src/control does not import
// src/experiments.
//   GET  /gamedays/experiments   the experiments: targets, phases, halts, schedule with next runs and blackouts
//   POST /v1/gamedays/dry-run    {experiment, seed?}: its blast radius and the seed it was resolved with, nothing injected
//   POST /v1/gamedays/run        {experiment, seed?}: starts it here (202); 409 while a run on overlapping targets runs
//   POST /v1/gamedays/:id/halt   {reason?}: the run halts (rolled back as any halt): its head is closed
import express, { Router } from 'express';
import { z } from 'zod';
import { callerOf } from './auth.ts';
import { GameDayHead, headKey, updateHead, isStale, listHeads, thisRunner } from './heads.ts';
import type { Store } from './store.ts';

/** How the runner reaches this control plane (a run's target, whatever its file says); the token is the launcher's. */
export interface PlaneTarget {
  readonly control: string;
  /** With TLS auto: the CA bundle this control plane wrote. */
  readonly ca?: string;
}

export interface ExperimentEntry {
  readonly name: string;
  readonly description: string;
  /** Services it injects faults into. */
  readonly targets: readonly string[];
  /** Its phases and method, in ms. */
  readonly phases: { readonly warmup: number; readonly baseline: number; readonly method: number; readonly recovery: number };
  /** Its halt conditions, as text. */
  readonly halts: readonly string[];
  readonly schedule: { readonly cron: string; readonly timezone: string; readonly windows: readonly string[]; readonly blackouts: readonly { from: string; to: string }[]; readonly next: readonly string[] } | null;
}

/** Lists, dry-runs and runs the experiments of a directory (experiments/launcher.ts). */
export interface GameDayLauncher {
  /** Where runs are recorded: the console serves reports from under it. */
  readonly reportsDir: string;
  list(): Promise<ExperimentEntry[]>;
  /** The dry run's lines with `seed` (else the experiment's, else a new one: returned). */
  dryRun(name: string, target: PlaneTarget, seed?: number): Promise<{ lines: string[]; seed: number }>;
  /**
   * Runs it to its end (halting when `signal` aborts), with `seed` when given: the dry run's, so it hurts
   * what that showed. `ended` is called when the run is over and its faults gone, before its reports.
   */
  run(name: string, target: PlaneTarget, signal: AbortSignal, seed?: number, ended?: () => void): Promise<void>;
}

interface LocalRun {
  readonly experiment: string;
  readonly targets: readonly string[];
  readonly halt: AbortController;
  readonly done: Promise<void>;
  /** Over, faults gone, head complete: its reports are still being written, its targets are free. */
  readonly ended: boolean;
}

const Named = z.strictObject({ experiment: z.string().min(1).max(200), seed: z.int().min(0).max(2 ** 31 - 1).optional() });
const HaltBody = z.strictObject({ reason: z.string().max(500).optional() });

/** The routes, and `close()`: runs started here halt, and are waited for (rolled back), when the control plane closes. */
export function gameDayRunRoutes(store: Store, launcher: GameDayLauncher | undefined, self: () => PlaneTarget): { router: Router; close(): Promise<void> } {
  const router = Router();
  /** Runs started here and not yet ended: their experiment's targets, and how to halt them at once. */
  const local = new Map<number, LocalRun>();
  let started = 0;

  router.get('/gamedays/experiments', async (_req, res) => {
    res.json({ experiments: launcher ? await launcher.list() : [], reportsDir: launcher?.reportsDir ?? null });
  });

  const experimentOf = async (body: unknown): Promise<{ entry: ExperimentEntry; seed: number | undefined } | string> => {
    if (!launcher) return 'this control plane was started without --experiments: it has no experiments to run';
    const parsed = Named.safeParse(body);
    if (!parsed.success) return `expected {experiment: NAME, seed?: INTEGER}: ${z.prettifyError(parsed.error)}`;
    const entry = (await launcher.list()).find((e) => e.name === parsed.data.experiment);
    return entry ? { entry, seed: parsed.data.seed } : `no experiment "${parsed.data.experiment}" in the experiments directory`;
  };

  router.post('/v1/gamedays/dry-run', express.json({ limit: '4kb' }), async (req, res) => {
    const asked = await experimentOf(req.body);
    if (typeof asked === 'string') return void res.status(400).json({ error: asked });
    try {
      res.json({ experiment: asked.entry.name, ...(await launcher!.dryRun(asked.entry.name, self(), asked.seed)) });
    } catch (error) {
      res.status(502).json({ error: `the dry run failed: ${(error as Error).message}` });
    }
  });

  router.post('/v1/gamedays/run', express.json({ limit: '4kb' }), async (req, res) => {
    const asked = await experimentOf(req.body);
    if (typeof asked === 'string') return void res.status(400).json({ error: asked });
    const { entry, seed } = asked;
    const busy = await overlapping(store, launcher!, entry, local);
    if (busy) return void res.status(409).json({ error: `${busy} runs on overlapping targets (${entry.targets.join(', ')}): wait for it to end or halt it` });
    const halt = new AbortController();
    const key = ++started;
    let ended = false;
    const done = launcher!
      .run(entry.name, self(), halt.signal, seed, () => (ended = true))
      .catch(() => undefined) // its journal and head say how it ended
      .finally(() => local.delete(key));
    local.set(key, { experiment: entry.name, targets: entry.targets, halt, done, get ended() { return ended; } });
    res.status(202).json({ experiment: entry.name, started: true, ...(seed !== undefined && { seed }) });
  });

  router.post('/v1/gamedays/:id/halt', express.json({ limit: '4kb' }), async (req, res) => {
    const body = HaltBody.safeParse(req.body ?? {});
    if (!body.success) return void res.status(400).json({ error: z.prettifyError(body.error) });
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(req.params.id)) return void res.status(404).json({ error: `no game day "${req.params.id}"` });
    const caller = callerOf(res);
    const reason = `halted from the console by ${caller.kind}${'session' in caller ? ' (a console session)' : ''}${body.data.reason ? `: ${body.data.reason}` : ''}`;
    // Its runner learns it at its next head write (a 409: run/head.ts), wherever it runs; one of this
    // process is told at once. Compare-and-swap: a heartbeat written meanwhile does not undo the close.
    let missing = false;
    const written = await updateHead(store, req.params.id, (stored) => {
      if (!stored) {
        missing = true;
        return 'missing';
      }
      if (stored.status !== 'running') return `game day ${stored.id} is not running (${stored.outcome ?? stored.status})`;
      return { ...stored, reason, closedBy: 'console' };
    });
    if (missing) return void res.status(404).json({ error: `no game day "${req.params.id}"` });
    if ('refused' in written) return void res.status(409).json({ error: written.refused });
    const head = written.head;
    if (head.runner === thisRunner()) for (const run of local.values()) if (run.experiment === head.experiment) run.halt.abort(new Error(reason));
    res.json({ id: head.id, halting: true, reason });
  });

  return {
    router,
    async close() {
      const running = [...local.values()];
      for (const run of running) run.halt.abort(new Error('the control plane is closing'));
      await Promise.all(running.map((r) => r.done));
    },
  };
}

/** The experiment running on a target this one shares, if any: runs started here, and running heads of any runner. */
async function overlapping(store: Store, launcher: GameDayLauncher, entry: ExperimentEntry, local: ReadonlyMap<number, LocalRun>): Promise<string | undefined> {
  // No targets named (a fault on every service) overlaps everything.
  const shares = (targets: readonly string[]) => targets.length === 0 || entry.targets.length === 0 || targets.some((t) => entry.targets.includes(t));
  // A run whose history row shows it ended is writing its reports: it holds nothing any more.
  for (const run of local.values()) if (!run.ended && shares(run.targets)) return run.experiment;
  const experiments = new Map((await launcher.list()).map((e) => [e.name, e.targets]));
  const now = Date.now();
  for (const head of (await listHeads(store)).heads) {
    if (head.status !== 'running' || isStale(head, now)) continue;
    // A run of an experiment not in this directory: its targets are unknown here, so it may overlap.
    const targets = experiments.get(head.experiment);
    if (!targets || shares(targets)) return head.experiment;
  }
  return undefined;
}
