// The API's game-day routes (admin token only): the journal heads every runner keeps here
// (heads.ts) and the scheduler's state, both read from the store, so any replica answers alike.
//   GET /gamedays            every head, newest first
//   GET /gamedays/:id        one
//   PUT /v1/gamedays/:id     a runner writes its head (at each phase and change, and as its heartbeat)
//   GET /schedule            the scheduled experiments' last and next runs, and the history (the leader's scheduler keeps it)
import express, { Router } from 'express';
import { z } from 'zod';
import { GameDayHead, headKey, listHeads, updateHead } from './heads.ts';
import type { Store } from './store.ts';

/** Where the leader's scheduler keeps its state in the store. */
export const SCHEDULE_KEY = 'schedule/state';

export function gameDayRoutes(store: Store): Router {
  const router = Router();

  router.get('/gamedays', async (_req, res) => {
    res.json(await listHeads(store));
  });

  router.get('/gamedays/:id', async (req, res) => {
    const text = /^[a-z0-9][a-z0-9.-]*$/.test(req.params.id) ? await store.get(headKey(req.params.id)) : undefined;
    if (text === undefined) return void res.status(404).json({ error: `no game day "${req.params.id}"` });
    res.type('json').send(text);
  });

  router.put('/v1/gamedays/:id', express.json({ limit: '64kb' }), async (req, res) => {
    const parsed = GameDayHead.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: `not a game-day head: ${z.prettifyError(parsed.error)}` });
    const head = parsed.data;
    if (head.id !== req.params.id) return void res.status(400).json({ error: `the head's id "${head.id}" is not the one in the path, "${req.params.id}"` });
    // A run the leader closed (its runner was not heard of) stays closed: a runner that was only cut
    // off learns it here — its faults are gone — and its final word (complete) is still taken.
    const written = await updateHead(store, head.id, (closed) => {
      if (closed?.closedBy === undefined) return head;
      if (head.status === 'running') return `game day ${head.id} was closed by ${closed.closedBy}: ${closed.reason ?? ''}`;
      return { ...head, closedBy: closed.closedBy };
    });
    if ('refused' in written) return void res.status(409).json({ error: written.refused });
    res.status(204).end();
  });

  router.get('/schedule', async (_req, res) => {
    const text = await store.get(SCHEDULE_KEY);
    res.json(text === undefined ? { experiments: {}, history: [] } : JSON.parse(text));
  });

  return router;
}
