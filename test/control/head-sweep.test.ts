// Game-day heads and the leader's sweep (one control plane on its file store, which leads alone): a
// runner writes its head through the API; a head not heard of for HEAD_STALE_MS is closed, its faults
// (listed, or of the same experiment) removed; a fresh one and this process's own are left alone; a
// run another leader's scheduler started is closed when this one comes to lead; a closed run stays
// closed (a late "running" is a 409) but its runner's final word is taken.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { HEAD_STALE_MS, type GameDayHead } from '../../src/control/heads.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';

const TOKEN = 'head-sweep-token';

async function api(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await request(`${url}${path}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': typeof body === 'string' ? 'application/yaml' : 'application/json' },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? JSON.parse(text) : undefined };
}

function head(id: string, overrides: Partial<GameDayHead> = {}): GameDayHead {
  const now = new Date().toISOString();
  return { id, experiment: 'slow-api', status: 'running', outcome: null, reason: null, phase: 'method', startedAt: now, finishedAt: null, heartbeatAt: now, runner: 'laptop:4242', dir: '/tmp/reports/x', faults: [], ...overrides };
}

describe('game-day heads and the leader sweep', function () {
  this.timeout(20_000);
  let control: RunningControlPlane;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-heads-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'heads' }, services: [{ name: 'api' }] }));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
    await waitFor(() => control.leadership.isLeader, 5_000, 'the control plane to lead');
  });

  after(() => control.close());

  it('refuses a head that is not one, or whose id is not the path\'s', async () => {
    expect((await api(control.url, 'PUT', '/v1/gamedays/a-run', { id: 'a-run' })).status).to.equal(400);
    const mismatch = await api(control.url, 'PUT', '/v1/gamedays/a-run', head('another-run'));
    expect(mismatch.status).to.equal(400);
    expect(JSON.stringify(mismatch.json)).to.match(/not the one in the path/);
  });

  it('closes a run whose runner went quiet and removes its faults; leaves fresh and own runs alone', async () => {
    const stale = new Date(Date.now() - HEAD_STALE_MS - 1_000).toISOString();
    // Two faults of the quiet run: one its head lists, one it put just before it died (same experiment).
    for (const id of ['listed', 'unlisted']) {
      expect((await api(control.url, 'PUT', `/faults/${id}`, `match: {destination: api}\nabort: {status: 503}\ndescription: "experiment:slow-api"\nttl: 1m\n`)).status).to.equal(200);
    }
    expect((await api(control.url, 'PUT', '/faults/other', 'match: {destination: api}\nabort: {status: 503}\ndescription: "experiment:another"\nttl: 1m\n')).status).to.equal(200);
    expect((await api(control.url, 'PUT', '/v1/gamedays/quiet-run', head('quiet-run', { heartbeatAt: stale, faults: ['listed'] }))).status).to.equal(204);
    expect((await api(control.url, 'PUT', '/v1/gamedays/live-run', head('live-run', { experiment: 'another' }))).status).to.equal(204);
    expect((await api(control.url, 'PUT', '/v1/gamedays/own-run', head('own-run', { experiment: 'another', heartbeatAt: stale, runner: `${hostname()}:${process.pid}` }))).status).to.equal(204);
    expect((await api(control.url, 'PUT', '/v1/gamedays/scheduled-run', head('scheduled-run', { experiment: 'another', scheduledBy: 'http://10.0.0.9:15100' }))).status).to.equal(204);

    const closed = await control.heads.sweep(control.leadership.current!, false);
    expect(closed).to.deep.equal(['quiet-run']);
    expect(control.plane.faults.all().map((f) => f.id).sort()).to.deep.equal(['other']);
    const quiet = (await api(control.url, 'GET', '/gamedays/quiet-run')).json as GameDayHead;
    expect(quiet).to.include({ status: 'complete', outcome: 'error', closedBy: control.url });
    expect(quiet.faults).to.deep.equal([]);
    expect(quiet.reason).to.match(/runner \(laptop:4242\) was not heard of since/).and.to.match(/removed its faults listed, unlisted/);

    // As a new leader, it also closes a run another leader's scheduler started.
    expect(await control.heads.sweep(control.leadership.current!, true)).to.deep.equal(['scheduled-run']);
    const listed = (await api(control.url, 'GET', '/gamedays')).json as { heads: GameDayHead[] };
    expect(listed.heads.filter((h) => h.status === 'running').map((h) => h.id).sort()).to.deep.equal(['live-run', 'own-run']);
  });

  it('keeps a closed run closed, and takes its runner\'s final word', async () => {
    const late = await api(control.url, 'PUT', '/v1/gamedays/quiet-run', head('quiet-run'));
    expect(late.status).to.equal(409);
    expect(JSON.stringify(late.json)).to.match(/closed by http/);
    const final = head('quiet-run', { status: 'complete', outcome: 'halted', reason: 'the control plane closed this run', finishedAt: new Date().toISOString() });
    expect((await api(control.url, 'PUT', '/v1/gamedays/quiet-run', final)).status).to.equal(204);
    expect((await api(control.url, 'GET', '/gamedays/quiet-run')).json).to.include({ outcome: 'halted', closedBy: control.url });
  });

  it('pushes every head to the console as a runner writes it (GET /ui/gamedays/stream)', async () => {
    const abort = new AbortController();
    const response = await request(`${control.url}/ui/gamedays/stream`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: abort.signal });
    expect(response.statusCode).to.equal(200);
    expect(response.headers['content-type']).to.equal('text/event-stream');
    const events: GameDayHead[][] = [];
    let buffer = '';
    response.body.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (block.startsWith('event: heads') && data) events.push(JSON.parse(data.slice(6)) as GameDayHead[]);
      }
    });
    response.body.on('error', () => undefined);
    try {
      await waitFor(() => events.length >= 1, 5_000, 'the first heads event');
      expect(events[0]!.map((h) => h.id)).to.include('live-run').and.not.include('pushed-run');
      expect((await api(control.url, 'PUT', '/v1/gamedays/pushed-run', head('pushed-run'))).status).to.equal(204);
      await waitFor(() => events.some((e) => e.some((h) => h.id === 'pushed-run')), 5_000, 'the new head pushed');
    } finally {
      abort.abort();
    }
  });

  it('needs the admin token', async () => {
    const response = await request(`${control.url}/gamedays`);
    expect(response.statusCode).to.equal(401);
    await response.body.dump();
  });
});
