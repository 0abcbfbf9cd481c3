// The Game days page in a real browser: Debian's Chromium (FAULTLINE_CHROMIUM, else /usr/bin/chromium)
// driven by playwright-core against a real `up` of the demo shop given an experiments directory (two
// short experiments). Lists them with schedule, next runs and the blackout in force; a run cannot start
// before its dry run is shown; runs one from the page and watches its phases, live figures and verdicts
// arrive, then its verdict and score in the history; halts a second one from the page (and a third on
// the same targets is refused meanwhile); opens a report as its own sandboxed document; a viewer can
// neither run nor halt. Screenshots go to test-results/console/.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from 'undici';
import { up, type Mesh } from '../../src/control/up.ts';
import { directoryLauncher } from '../../src/experiments/launcher.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { demoMeshOnFreePorts } from '../helpers/mesh.ts';
import { waitFor } from '../helpers/net.ts';

const CHROMIUM = process.env.FAULTLINE_CHROMIUM ?? '/usr/bin/chromium';
const VIEWER = 'gamedays-test-viewer-token';
const SHOTS = join(process.cwd(), 'test-results', 'console');

const hour = 3_600_000;
/** A few seconds long: a 2.5 s method with 10 % of cart's tries to payments aborted (retries mask them). */
const SHORT = (now: number) => `name: short-aborts
description: 10 % of cart's tries to payments aborted with 503 for 2.5 s
target: {mesh: not-used-the-console-runs-against-its-mesh.yaml}
load: {entry: frontend, rate: 20}
phases: {warmup: 500ms, baseline: 2s, recovery: 1s}
steadyState:
  - availability: {service: frontend, min: 50}
method:
  - at: 0s
    duration: 2500ms
    fault: {id: short-errors, match: {destination: payments}, at: attempt, percent: 10, abort: {status: 503}}
halt:
  - availability: {service: frontend, below: 5, for: 2s}
schedule:
  cron: "*/10 * * * *"
  blackouts: [{from: "${new Date(now - hour).toISOString()}", to: "${new Date(now + hour).toISOString()}"}]
`;
/**
 * A minute of method: halted from the page long before. Its baseline must hold the 20 samples a
 * verdict needs with room to spare (verdicts.ts): 1 s at 20/s gave 18–20, an inconclusive baseline,
 * and a run that ended before its fault (3 of ~20 runs on 2026-12-03, one of them in a CI run).
 */
const LONG = `name: long-delay
target: {mesh: not-used.yaml}
load: {entry: frontend, rate: 20}
phases: {warmup: 500ms, baseline: 2s, recovery: 500ms}
steadyState:
  - availability: {service: frontend, min: 50}
method:
  - at: 0s
    duration: 60s
    fault: {id: long-delay, match: {destination: payments}, at: attempt, percent: 50, delay: {fixed: 20ms}}
halt:
  - latency: {service: frontend, percentile: 99, above: 5s, for: 2s}
`;

describe('console: game days (Chromium)', function () {
  this.timeout(90_000);
  let mesh: Mesh;
  let browser: Browser;
  let page: Page;

  const signIn = async (p: Page, token: string) => {
    await p.goto(`${mesh.control.url}/ui`);
    await p.getByLabel('Token (admin or viewer)').fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByTestId('nav-gamedays').click();
    await p.getByRole('heading', { name: 'Game days' }).waitFor();
  };
  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await request(`${mesh.control.url}${path}`, { method: method as 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: string } };
  };

  before(async function () {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (scripts/test-setup.sh does) or set FAULTLINE_CHROMIUM`);
    await mkdir(SHOTS, { recursive: true });
    const dir = await mkdtemp(join(tmpdir(), 'faultline-gamedays-'));
    const experiments = join(dir, 'experiments');
    await mkdir(experiments);
    await writeFile(join(experiments, 'short.yaml'), SHORT(Date.now()));
    await writeFile(join(experiments, 'long.yaml'), LONG);
    [mesh, browser] = await Promise.all([
      up({ file: await demoMeshOnFreePorts(), listen: '127.0.0.1:0', stateDir: join(dir, 'state'), viewerToken: VIEWER, gameDays: (tokenFile) => directoryLauncher(experiments, join(dir, 'reports'), { report: writeReportsLine, tokenFile }) }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--no-first-run'] }),
    ]);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(15_000);
    await signIn(page, mesh.token);
  });

  after(async () => {
    await browser?.close();
    await mesh?.close();
  });

  it('lists the experiments with their schedule, next runs and the blackout in force', async () => {
    const short = page.getByTestId('experiment-short-aborts');
    await short.waitFor();
    await page.getByTestId('experiment-long-delay').waitFor();
    expect(await short.textContent()).to.include('targets payments').and.include('*/10 * * * *').and.include('halts when availability of frontend below 5 %');
    // Every 10 minutes, but none inside the blackout (now ± 1 h): the next allowed is after it.
    const next = (await short.getByTestId('schedule').textContent())!.match(/next runs: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/)![1]!;
    expect(Date.parse(`${next.replace(' ', 'T')}Z`)).to.be.above(Date.now() + hour - 60_000);
    expect(await short.locator('.blackout.now').count()).to.equal(1);
    expect(await page.getByTestId('experiment-long-delay').textContent()).to.include('not scheduled');
  });

  it('runs a game day from the page after its dry run, and watches its phases, figures and verdicts arrive', async () => {
    const card = page.getByTestId('experiment-short-aborts');
    expect(await card.getByTestId('run').isDisabled()).to.equal(true);
    await card.getByTestId('dry-run').click();
    const blast = card.getByTestId('blast-radius');
    await blast.waitFor();
    expect(await blast.textContent()).to.include('short-errors: at 0 ms for 2500 ms, abort at attempt').and.include('services  payments').and.include('endpoints 3');
    const seed = Number((await blast.textContent())!.match(/seed (\d+): nothing injected/)![1]);
    await card.getByTestId('run').click();
    const running = page.getByTestId('running-short-aborts');
    await running.waitFor();
    const phases = new Set<string>();
    let figures = '';
    let sawVerdicts = false;
    await waitFor(async () => {
      if (await running.count()) {
        // The card goes when the run ends: never wait long for what may be gone.
        phases.add((await running.getByTestId('run-phase').textContent({ timeout: 200 }).catch(() => '')) ?? '');
        const text = (await running.getByTestId('live-figures').textContent({ timeout: 200 }).catch(() => '')) ?? '';
        if (Number(text.match(/([\d.]+) rps/)?.[1] ?? 0) > 0) figures = text;
        if (!sawVerdicts && (await running.getByTestId('verdicts').count())) {
          sawVerdicts = true;
          await page.screenshot({ path: join(SHOTS, 'gamedays-running.png'), fullPage: true });
        }
      }
      return (await page.getByTestId('history').getByText('short-aborts').count()) > 0;
    }, 40_000, 'the run to finish and show in the history');
    expect([...phases]).to.include.members(['baseline', 'method']);
    expect(figures, 'live figures while it ran').to.match(/errors [\d.]+ %/).and.match(/p99 \d+ ms/);
    expect(sawVerdicts, 'the baseline verdicts shown while it ran').to.equal(true);
    const row = page.getByTestId('history').getByRole('row').filter({ hasText: 'short-aborts' });
    expect(await row.locator('.outcome').textContent()).to.match(/^passed/);
    expect(Number(await row.getByRole('cell').nth(3).textContent())).to.be.within(0, 100);
    await page.getByTestId('trend-short-aborts').locator('circle').waitFor();
    expect(mesh.control.plane.faults.get('short-errors')).to.equal(undefined);
    // It ran with the seed its dry run showed (endpoints chosen by seed are the ones shown).
    const id = (await row.getByRole('cell').first().textContent())!;
    const head = (await (await request(`${mesh.control.url}/gamedays/${id}`, { headers: { authorization: `Bearer ${mesh.token}` } })).body.json()) as { dir: string };
    expect(JSON.parse(await readFile(join(head.dir, 'journal.json'), 'utf8')).seed).to.equal(seed);
    await page.screenshot({ path: join(SHOTS, 'gamedays-history.png'), fullPage: true });
  });

  it('halts a running game day from the page; another on the same targets is refused meanwhile', async () => {
    const card = page.getByTestId('experiment-long-delay');
    await card.getByTestId('dry-run').click();
    await card.getByTestId('blast-radius').waitFor();
    await card.getByTestId('run').click();
    // The run before it is in the history, so its targets are free (its reports may still be being written).
    await waitFor(async () => ((await card.getByTestId('run-message').textContent().catch(() => '')) ?? '') !== '', 10_000, 'the answer to Run');
    expect(await card.getByTestId('run-message').textContent()).to.equal('Started: it shows under Running.');
    const running = page.getByTestId('running-long-delay');
    // A run that ends before its fault is in force says how it ended, instead of a timeout.
    const ended = page.getByTestId('history').getByRole('row').filter({ hasText: 'long-delay' });
    const inForce = await waitFor(async () => {
      if ((await running.getByTestId('run-faults').textContent().catch(() => '')) === 'long-delay') return 'in force';
      return (await ended.count()) > 0 ? `ended first: ${await ended.locator('.outcome').textContent()}` : undefined;
    }, 20_000, 'long-delay in force');
    expect(inForce).to.equal('in force');
    // The halt conditions' standing comes with the head's next heartbeat (every 2 s).
    await waitFor(async () => ((await running.getByTestId('halts').textContent().catch(() => '')) ?? '').includes('p99 of frontend above 5000 ms'), 10_000, 'the halt conditions shown');
    const refused = await api('POST', '/v1/gamedays/run', mesh.token, { experiment: 'short-aborts' });
    expect(refused.status).to.equal(409);
    expect(refused.body.error).to.include('long-delay runs on overlapping targets (payments)');
    await running.getByTestId('halt-run').click();
    const row = page.getByTestId('history').getByRole('row').filter({ hasText: 'long-delay' });
    await row.waitFor({ timeout: 20_000 });
    expect(await row.locator('.outcome').textContent()).to.match(/^halted.*halted from the console by admin \(a console session\)/);
    expect(mesh.control.plane.faults.get('long-delay')).to.equal(undefined);
  });

  it('opens a run\'s report as it is on disk, its own document under its own CSP, sandboxed', async () => {
    const row = page.getByTestId('history').getByRole('row').filter({ hasText: 'short-aborts' });
    const [report] = await Promise.all([page.context().waitForEvent('page'), row.getByTestId('open-report').click()]);
    await report.waitForLoadState();
    expect(report.url()).to.match(/\/ui\/reports\/short-aborts-/);
    const response = await request(report.url(), { headers: { authorization: `Bearer ${mesh.token}` } });
    expect(response.headers['content-security-policy']).to.include('sandbox').and.include("default-src 'none'");
    await response.body.dump();
    await report.getByText('short-aborts').first().waitFor();
    await report.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
    await report.close();
    // The console's own policy is unchanged.
    const ui = await request(`${mesh.control.url}/ui/gamedays`);
    await ui.body.dump();
    expect(ui.headers['content-security-policy']).to.include("script-src 'self'").and.not.include('unsafe-inline');
  });

  it('names what is wrong with a request to run or halt', async () => {
    const unknown = await api('POST', '/v1/gamedays/run', mesh.token, { experiment: 'nope' });
    expect([unknown.status, unknown.body.error]).to.deep.equal([400, 'no experiment "nope" in the experiments directory']);
    const malformed = await api('POST', '/v1/gamedays/dry-run', mesh.token, { name: 'short-aborts' });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.error).to.include('expected {experiment: NAME, seed?: INTEGER}').and.include('experiment');
    expect((await api('POST', '/v1/gamedays/no-such-run/halt', mesh.token)).status).to.equal(404);
    const done = (await page.getByTestId('history').getByRole('row').filter({ hasText: 'short-aborts' }).getByRole('cell').first().textContent())!;
    const finished = await api('POST', `/v1/gamedays/${done}/halt`, mesh.token);
    expect([finished.status, finished.body.error]).to.deep.equal([409, `game day ${done} is not running (passed)`]);
    const report = await request(`${mesh.control.url}/ui/reports/no-such-run`, { headers: { authorization: `Bearer ${mesh.token}` } });
    expect(report.statusCode).to.equal(404);
    await report.body.dump();
  });

  it('halts a run of another runner by closing its head: its next write is refused (409) and it halts there', async () => {
    const now = new Date().toISOString();
    const head = { id: 'elsewhere-1', experiment: 'elsewhere', status: 'running', outcome: null, reason: null, phase: 'method', startedAt: now, finishedAt: null, heartbeatAt: now, runner: 'laptop:42', dir: '/home/someone/reports/elsewhere/1', faults: [] };
    const put = (body: unknown) => request(`${mesh.control.url}/v1/gamedays/elsewhere-1`, { method: 'PUT', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await put(head)).statusCode).to.equal(204);
    const halted = await api('POST', '/v1/gamedays/elsewhere-1/halt', mesh.token, { reason: 'test' });
    expect(halted.status).to.equal(200);
    const refused = await put({ ...head, heartbeatAt: new Date().toISOString() });
    expect(refused.statusCode).to.equal(409);
    expect(((await refused.body.json()) as { error: string }).error).to.include('closed by console: halted from the console by admin: test');
    // Its final word is still taken; its report is not on this control plane, and the page says so.
    expect((await put({ ...head, status: 'complete', outcome: 'halted', reason: 'the control plane closed this run', finishedAt: new Date().toISOString() })).statusCode).to.equal(204);
    const row = page.getByTestId('history-elsewhere-1');
    await row.waitFor();
    expect(await row.textContent()).to.include('not on this control plane');
  });

  it('a viewer sees the game days and can neither run nor halt (page and API)', async () => {
    const viewer = await (await browser.newContext({ viewport: { width: 390, height: 800 } })).newPage();
    viewer.setDefaultTimeout(15_000);
    await signIn(viewer, VIEWER);
    const card = viewer.getByTestId('experiment-short-aborts');
    await card.getByTestId('viewer-no-run').waitFor();
    expect(await viewer.getByTestId('dry-run').count()).to.equal(0);
    expect(await viewer.getByTestId('run').count()).to.equal(0);
    await viewer.getByTestId('history').waitFor();
    await viewer.screenshot({ path: join(SHOTS, 'gamedays-viewer-phone.png'), fullPage: true });
    expect((await api('POST', '/v1/gamedays/run', VIEWER, { experiment: 'short-aborts' })).status).to.equal(403);
    expect((await api('POST', '/v1/gamedays/dry-run', VIEWER, { experiment: 'short-aborts' })).status).to.equal(403);
    const id = (await viewer.getByTestId('history').getByRole('row').nth(1).getByRole('cell').first().textContent())!;
    expect((await api('POST', `/v1/gamedays/${id}/halt`, VIEWER)).status).to.equal(403);
    await viewer.context().close();
  });
});
