// The Game days page's history and reports: finished runs (their heads) with the score their report
// gives, and each run's report.html served as its own document, read from the run's directory when this
// replica holds it (under the --reports directory). A run recorded elsewhere (another host, or a CLI's
// own reports directory) is listed with its verdict but no score or report: its directory is named.
//   GET /ui/gamedays/history   finished runs, newest first: outcome, score, whether the report is here
//   GET /ui/gamedays/stream    server-sent events: `heads` (every game day's head) at once and at each change of one
//   GET /ui/reports/:id        the run's report.html, as on disk, under the report's own CSP and sandboxed
import { readFile } from 'node:fs/promises';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { Router } from 'express';
import { HEAD_PREFIX, headKey, listHeads, GameDayHead } from '../heads.ts';
import { sessionCookie, type ControlAccess } from '../auth.ts';
import type { Store } from '../store.ts';

/**
 * The report's own policy (its <meta> says the same: inline styles, data: images, nothing else), plus
 * `sandbox`: it runs in an opaque origin, so it could not call the API with the console's cookie even if
 * it carried a script. The console's own CSP is not relaxed for it.
 */
export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox";

export interface HistoryEntry {
  readonly id: string;
  readonly experiment: string;
  readonly outcome: GameDayHead['outcome'];
  readonly reason: string | null;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** The resilience score (0–100) its report gives; null when it has none or the report is not here. */
  readonly score: number | null;
  /** Whether this replica holds its report (else `dir` says where it was recorded). */
  readonly report: boolean;
  readonly dir: string;
  readonly runner: string;
}

/** Changes to heads arriving within this long go out as one `heads` event (a run's heartbeat and its phase at once). */
const HEADS_COALESCE_MS = 200;
/** A comment line this often keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

export function reportRoutes(store: Store, reportsDir: string | undefined, access?: ControlAccess): Router {
  const router = Router();

  // The running game days live (the page's Running section), pushed as the store's heads change —
  // whichever runner on whichever replica wrote them — rather than polled.
  router.get('/ui/gamedays/stream', async (req, res) => {
    // Under a session, the stream is cut when the session ends (sign-out anywhere, expiry), as /ui/live.
    const id = sessionCookie(req.headers.cookie);
    const session = req.headers.authorization ? undefined : access?.sessions?.get(id);
    if (session) access!.sessions!.hold(id!, session, res);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    let timer: NodeJS.Timeout | undefined;
    const send = async (): Promise<void> => {
      timer = undefined;
      const { heads } = await listHeads(store);
      if (!res.destroyed) res.write(`event: heads\ndata: ${JSON.stringify(heads)}\n\n`);
    };
    const soon = (): void => {
      timer ??= setTimeout(() => void send().catch(() => res.destroy()), HEADS_COALESCE_MS);
    };
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    const unwatch = await store.watch(HEAD_PREFIX, soon);
    res.once('close', () => {
      unwatch();
      clearInterval(heartbeat);
      clearTimeout(timer);
    });
    if (req.destroyed) return void res.destroy();
    await send();
  });
  /** The run's directory when it is under the reports directory (never a path a head could point anywhere). */
  const here = (head: GameDayHead): string | undefined => {
    if (!reportsDir) return undefined;
    const dir = resolve(head.dir);
    const inside = relative(reportsDir, dir);
    return inside && !inside.startsWith('..') && !isAbsolute(inside) ? dir : undefined;
  };

  router.get('/ui/gamedays/history', async (_req, res) => {
    const finished = (await listHeads(store)).heads.filter((h) => h.status === 'complete');
    const runs = await Promise.all(finished.map(async (head): Promise<HistoryEntry> => {
      const dir = here(head);
      const json = dir ? await readFile(join(dir, 'report.json'), 'utf8').catch(() => undefined) : undefined;
      const score = json === undefined ? null : scoreOf(json);
      const html = dir ? await readFile(join(dir, 'report.html')).then(() => true, () => false) : false;
      return { id: head.id, experiment: head.experiment, outcome: head.outcome, reason: head.reason, startedAt: head.startedAt, finishedAt: head.finishedAt, score, report: html, dir: head.dir, runner: head.runner };
    }));
    res.set('cache-control', 'no-store').json({ runs });
  });

  router.get('/ui/reports/:id', async (req, res) => {
    const text = /^[a-z0-9][a-z0-9.-]*$/.test(req.params.id) ? await store.get(headKey(req.params.id)) : undefined;
    const head = text === undefined ? undefined : GameDayHead.safeParse(JSON.parse(text)).data;
    if (!head) return void res.status(404).json({ error: `no game day "${req.params.id}"` });
    const dir = here(head);
    const html = dir ? await readFile(join(dir, 'report.html')).catch(() => undefined) : undefined;
    if (!html) return void res.status(404).json({ error: `the report of ${head.id} is not on this control plane: it was recorded in ${head.dir} by ${head.runner}` });
    res.set({ 'content-security-policy': REPORT_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' }).type('html').send(html);
  });
  return router;
}

function scoreOf(json: string): number | null {
  try {
    const value = (JSON.parse(json) as { score?: { value?: unknown } }).score?.value;
    return typeof value === 'number' ? value : null;
  } catch {
    return null;
  }
}
