// Runs started through the API hold their targets while they run, and free them the moment the run is
// over (faults gone, head complete), not when its reports are written: the history shows it ended, so
// a run on the same targets may start. The launcher is the seam the CLI fills with the experiments
// directory; here one whose runs end when the test says.
import { expect } from 'chai';
import express from 'express';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { gameDayRunRoutes, type ExperimentEntry, type GameDayLauncher } from '../../src/control/game-day-runs.ts';
import { FileStore } from '../../src/control/store.ts';

const entry = (name: string, targets: string[]): ExperimentEntry => ({ name, description: '', targets, phases: { warmup: 0, baseline: 0, method: 0, recovery: 0 }, halts: [], schedule: null });

describe('game days run through the API', () => {
  it('refuses a run on overlapping targets while one runs, and takes it once that one has ended, its reports still being written', async () => {
    const store = new FileStore(await mkdtemp(join(tmpdir(), 'faultline-runs-')));
    const runs: { name: string; ended: () => void; finish: () => void }[] = [];
    const launcher: GameDayLauncher = {
      reportsDir: '/nowhere',
      list: async () => [entry('a', ['payments']), entry('b', ['payments', 'stock']), entry('c', ['search'])],
      dryRun: async () => ({ lines: [], seed: 1 }),
      run: (name, _target, _signal, _seed, ended) => new Promise<void>((finish) => runs.push({ name, ended: ended ?? (() => {}), finish })),
    };
    const routes = gameDayRunRoutes(store, launcher, () => ({ control: 'http://127.0.0.1:1' }));
    const app = express();
    app.use((_req, res, next) => ((res.locals.caller = { kind: 'admin' }), next()));
    app.use(routes.router);
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const run = async (experiment: string) => {
      const res = await request(`${url}/v1/gamedays/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ experiment }) });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: string } };
    };
    try {
      expect((await run('a')).status).to.equal(202);
      const refused = await run('b');
      expect(refused.status).to.equal(409);
      expect(refused.body.error).to.include('a runs on overlapping targets (payments, stock)');
      expect((await run('c')).status, 'no target in common').to.equal(202);
      runs[0]!.ended(); // a is over; its reports are being written
      expect((await run('b')).status).to.equal(202);
      expect(runs.map((r) => r.name)).to.deep.equal(['a', 'c', 'b']);
    } finally {
      for (const r of runs) r.finish();
      await routes.close();
      server.close();
      await store.close();
    }
  });
});
