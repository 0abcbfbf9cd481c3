// Game-day journal heads: what the control planes know of each game day run against them — which
// experiment, who runs it, its phase, the faults it has in force, its outcome — kept in the store under
// `gamedays/<run id>`, so that every replica (and the console) sees every run, and so that the leader
// can close the run of a runner that died: its heartbeat stops, the leader removes its faults and says
// so in its head (leader-duties.ts). The full journal stays with the run's reports, where it runs.
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Store } from './store.ts';

export const HEAD_PREFIX = 'gamedays/';
/** How often a running game day says it is alive (its head written again). */
export const HEARTBEAT_MS = 2_000;
/** A running game day not heard of for this long has lost its runner: the leader closes it. */
export const HEAD_STALE_MS = 10_000;
/** Heads of finished runs kept in the store (the newest); older ones are trimmed by the leader. */
export const FINISHED_HEADS_KEPT = 200;
/** A head's live figures are of the load's last this long. */
export const LIVE_WINDOW_MS = 2_000;

const RUN_ID = /^[a-z0-9][a-z0-9.-]{0,199}$/;
const Timestamp = z.iso.datetime({ offset: true });

export const GameDayHead = z.strictObject({
  id: z.string().regex(RUN_ID, { error: 'a run id: lowercase letters, digits, "." and "-"' }),
  experiment: z.string().min(1),
  status: z.enum(['running', 'complete']),
  outcome: z.enum(['passed', 'failed', 'halted', 'inconclusive', 'error']).nullable(),
  reason: z.string().nullable(),
  /** The phase it is in (the last one, once complete). */
  phase: z.string().nullable(),
  startedAt: Timestamp,
  finishedAt: Timestamp.nullable(),
  /** When its runner last wrote it: a running head older than HEAD_STALE_MS has lost its runner. */
  heartbeatAt: Timestamp,
  /** Who runs it: host name and process id. */
  runner: z.string().min(1),
  /** The control plane whose scheduler started it, when one did. */
  scheduledBy: z.string().optional(),
  /** Its journal and reports, on the runner's host. */
  dir: z.string(),
  /** Its faults in force now (put and not yet removed). */
  faults: z.array(z.string()),
  /** Who closed it when its runner could not: the leader's URL; or `console` (halted from it). */
  closedBy: z.string().optional(),
  /** Its verdicts so far (the baseline's once judged, every one once complete). */
  verdicts: z.array(z.strictObject({ hypothesis: z.string(), window: z.string(), outcome: z.string(), measured: z.string() })).max(200).optional(),
  /**
   * While it runs, what its runner sees (written with each heartbeat): its load over the last
   * LIVE_WINDOW_MS and each halt condition over its own window, so a console shows how close each is.
   */
  live: z
    .strictObject({
      at: Timestamp,
      rps: z.number(),
      errorPct: z.number().nullable(),
      p99Ms: z.number().nullable(),
      halts: z.array(z.strictObject({ condition: z.string(), value: z.number().nullable(), limit: z.number(), kind: z.enum(['below', 'above']), samples: z.int(), holds: z.boolean() })).max(50),
    })
    .optional(),
});
export type GameDayHead = z.infer<typeof GameDayHead>;

/** Who runs a game day in this process (a head's `runner`). */
export function thisRunner(): string {
  return `${hostname()}:${process.pid}`;
}

/** A run's id from its experiment and its start (the reports' directory name): safe as a store key. */
export function runId(experiment: string, stamp: string): string {
  const id = `${experiment}-${stamp}`.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+/, '');
  return id.slice(0, 200) || 'run';
}

export function headKey(id: string): string {
  return `${HEAD_PREFIX}${id}`;
}

/** Every head in the store, newest first; one that does not parse is left out (and named in `bad`). */
export async function listHeads(store: Store): Promise<{ heads: GameDayHead[]; bad: string[] }> {
  const heads: GameDayHead[] = [];
  const bad: string[] = [];
  for (const [key, value] of await store.entries(HEAD_PREFIX)) {
    try {
      heads.push(GameDayHead.parse(JSON.parse(value)));
    } catch {
      bad.push(key);
    }
  }
  heads.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
  return { heads, bad };
}

/** Whether a running head's runner has gone quiet at `now`. */
export function isStale(head: GameDayHead, now: number): boolean {
  return head.status === 'running' && now - Date.parse(head.heartbeatAt) > HEAD_STALE_MS;
}

/**
 * Changes a head as it is now in the store, by compare-and-swap: `change` gets the stored head (or
 * undefined) and returns the new one, or a reason not to write (a string, returned as is); a head
 * written meanwhile by another (a runner's heartbeat, the leader closing it) makes it read and decide
 * again, so a close is never lost to a heartbeat, nor a heartbeat written over a close.
 */
export async function updateHead(store: Store, id: string, change: (stored: GameDayHead | undefined) => GameDayHead | string): Promise<{ head: GameDayHead } | { refused: string }> {
  const key = headKey(id);
  for (;;) {
    const text = await store.get(key);
    let stored: GameDayHead | undefined;
    if (text !== undefined) {
      try {
        stored = GameDayHead.parse(JSON.parse(text));
      } catch {
        stored = undefined;
      }
    }
    const next = change(stored);
    if (typeof next === 'string') return { refused: next };
    if (await store.replace(key, text, JSON.stringify(next))) return { head: next };
  }
}
