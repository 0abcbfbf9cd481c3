// The console in a real browser: Debian's Chromium (FAULTLINE_CHROMIUM, else /usr/bin/chromium) driven by
// playwright-core against a real `up` of the demo shop with traffic driven through it (bounded). Signs
// in; the graph shows the demo's services with live numbers; a fault added in the form reaches every
// sidecar's /faults and marks its edge; a bad fault's problems show at their fields; the emergency stop
// clears every fault; a viewer cannot inject (page and API); a change without the CSRF token is a 403.
// Screenshots of each page go to test-results/console/ (git-ignored).
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Pool, request } from 'undici';
import { up, type Mesh } from '../../src/control/up.ts';
import { demoMeshOnFreePorts } from '../helpers/mesh.ts';
import { waitFor } from '../helpers/net.ts';

const CHROMIUM = process.env.FAULTLINE_CHROMIUM ?? '/usr/bin/chromium';
const VIEWER = 'console-test-viewer-token';
const SHOTS = join(process.cwd(), 'test-results', 'console');
/** Traffic stops at this many requests whatever happens (bounded), or when the tests end. */
const MAX_REQUESTS = 20_000;

/** Requests to the demo's entry through its sidecar, two at a time, until stopped or MAX_REQUESTS. */
function drive(inbound: string): { sent: () => number; stop: () => Promise<void> } {
  const pool = new Pool(`http://${inbound}`, { connections: 2 });
  let sent = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && sent < MAX_REQUESTS) {
      sent++;
      try {
        const res = await pool.request({ path: '/', method: 'GET', headers: { host: 'frontend' }, signal: AbortSignal.timeout(5_000) });
        await res.body.dump();
      } catch {
        // a failed request is traffic too (the faults make some)
      }
    }
  };
  const workers = [worker(), worker()];
  return {
    sent: () => sent,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      await pool.close();
    },
  };
}

async function runtimeFaultsOn(admin: string): Promise<string[]> {
  const res = await request(`http://${admin}/faults`);
  const { faults } = (await res.body.json()) as { faults: { id: string; origin: string }[] };
  return faults.filter((f) => f.origin === 'runtime').map((f) => f.id).sort();
}

describe('console (Chromium)', function () {
  this.timeout(60_000);
  let mesh: Mesh;
  let browser: Browser;
  let traffic: ReturnType<typeof drive>;
  let page: Page;
  let admins: string[];

  before(async function () {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (scripts/test-setup.sh does) or set FAULTLINE_CHROMIUM`);
    await mkdir(SHOTS, { recursive: true });
    const dir = await mkdtemp(join(tmpdir(), 'faultline-console-'));
    [mesh, browser] = await Promise.all([
      up({ file: await demoMeshOnFreePorts(), listen: '127.0.0.1:0', stateDir: join(dir, 'state'), viewerToken: VIEWER }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--no-first-run'] }),
    ]);
    admins = [...mesh.sidecars.values()].map((s) => s.sidecar.addresses.admin);
    traffic = drive(mesh.sidecars.get('frontend')!.sidecar.addresses.inbound!);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(10_000);
  });

  after(async () => {
    await traffic?.stop();
    await browser?.close();
    await mesh?.close();
  });

  it('signs in with the admin token (a form POST), to a session cookie the page cannot read', async () => {
    await page.goto(`${mesh.control.url}/ui`);
    await page.getByLabel('Token (admin or viewer)').waitFor();
    await page.screenshot({ path: join(SHOTS, 'signin.png') });
    await page.getByLabel('Token (admin or viewer)').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('signin-refused').waitFor();
    expect(page.url()).to.equal(`${mesh.control.url}/ui?signin=refused`);
    await page.getByLabel('Token (admin or viewer)').fill(mesh.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').filter({ hasText: 'admin' }).waitFor();
    expect(page.url()).to.not.include(mesh.token);
    const cookies = await page.context().cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).to.deep.equal([['faultline_session', true, 'Strict']]);
    expect(await page.evaluate('document.cookie')).to.equal('');
  });

  it('shows the demo\'s services and calls, with live numbers each second', async () => {
    for (const service of ['frontend', 'catalog', 'cart', 'payments', 'stock']) await page.getByTestId(`node-${service}`).waitFor();
    for (const [a, b] of [['frontend', 'catalog'], ['frontend', 'cart'], ['cart', 'payments'], ['cart', 'stock']]) await page.getByTestId(`edge-${a}-${b}`).waitFor();
    // Live: requests flowing frontend → catalog (rps above 0), and at the frontend itself.
    const rate = async (testId: string) => Number.parseFloat((await page.getByTestId(testId).textContent()) ?? '0');
    await waitFor(async () => (await rate('edge-rate-frontend-catalog')) > 0 && (await rate('node-rate-frontend')) > 0, 15_000, 'live rps on frontend → catalog and at frontend');
    expect(await page.getByTestId('edge-rate-cart-payments').textContent()).to.match(/^\d+\.\d\/s · \d+% · (\d+ms|–)$/);
    // The instances of a service: its endpoints and sidecars with health.
    const payments = page.getByTestId('service-payments');
    for (const name of ['payments-1', 'payments-2', 'payments-3']) await payments.getByRole('cell', { name, exact: true }).waitFor();
    await waitFor(async () => (await payments.locator('.health.ready').count()) === 3, 10_000, 'three ready payments sidecars');
    expect(await payments.textContent()).to.include('version=v2');
    await page.screenshot({ path: join(SHOTS, 'mesh.png'), fullPage: true });
  });

  it('adds a fault from the form: on every sidecar\'s /faults and as a faulted edge', async () => {
    await page.getByTestId('nav-faults').click();
    await page.getByTestId('no-faults').waitFor();
    await page.getByLabel('Id').fill('console-abort');
    await page.getByLabel('Calls from').selectOption('cart');
    await page.getByLabel('Calls to').selectOption('payments');
    await page.getByLabel('Percent of matching calls').fill('20');
    await page.getByLabel('Status').fill('503');
    await page.getByLabel('Lease').fill('2m');
    await page.getByTestId('fault-submit').click();
    await page.getByTestId('fault-console-abort').waitFor();
    // The lease counts down from 2:00.
    const lease = await page.getByTestId('lease-console-abort').textContent();
    expect(lease).to.match(/^[12]:\d\d$/);
    await waitFor(async () => (await page.getByTestId('lease-console-abort').textContent()) !== lease, 5_000, 'the lease to count down');
    expect(mesh.control.plane.faults.get('console-abort')?.spec).to.deep.include({ percent: 20, abort: { status: 503 } });
    await waitFor(async () => (await Promise.all(admins.map(runtimeFaultsOn))).every((ids) => ids.join() === 'console-abort'), 10_000, 'console-abort on every sidecar\'s /faults');
    // As the sidecars say (their acks), and applied to cart's calls by cart's sidecar (fault.applied).
    await waitFor(async () => (await page.getByTestId('held-console-abort').textContent()) === '9/9', 10_000, 'the page to say 9 of 9 sidecars hold it');
    await waitFor(async () => Number(await page.getByRole('row').filter({ hasText: 'console-abort' }).getByRole('cell').nth(5).textContent()) > 0, 10_000, 'applied counts above 0');
    await page.screenshot({ path: join(SHOTS, 'faults.png'), fullPage: true });
    await page.getByTestId('nav-mesh').click();
    const edge = page.getByTestId('edge-cart-payments');
    await waitFor(async () => (await edge.getAttribute('data-faulted')) === 'console-abort', 5_000, 'cart → payments marked faulted');
    expect(await page.getByTestId('edge-frontend-catalog').getAttribute('data-faulted')).to.equal(null);
    await page.screenshot({ path: join(SHOTS, 'mesh-faulted.png'), fullPage: true });
  });

  it('shows a bad fault\'s problems at their fields, as the API\'s schema names them', async () => {
    await page.getByTestId('nav-faults').click();
    await page.getByLabel('Id').fill('bad-fault');
    await page.getByLabel('Percent of matching calls').fill('150');
    await page.getByLabel('Status').fill('42');
    await page.getByTestId('fault-submit').click();
    const percent = await page.getByTestId('error-percent').textContent();
    const status = await page.getByTestId('error-status').textContent();
    expect(percent).to.match(/100/);
    expect(status).to.match(/200/);
    expect(await page.getByLabel('Percent of matching calls').getAttribute('aria-invalid')).to.equal('true');
    expect(mesh.control.plane.faults.get('bad-fault')).to.equal(undefined);
    await page.screenshot({ path: join(SHOTS, 'faults-invalid.png'), fullPage: true });
  });

  it('refuses a change without the session\'s CSRF token (403)', async () => {
    const status = await page.evaluate(async () => {
      const res = await fetch('/faults/no-csrf', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ abort: { status: 503 }, ttl: '1m' }) });
      return res.status;
    });
    expect(status).to.equal(403);
    expect(mesh.control.plane.faults.get('no-csrf')).to.equal(undefined);
  });

  it('the emergency stop, from any page, clears every fault', async () => {
    await request(`${mesh.control.url}/faults/api-delay`, { method: 'PUT', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ match: { destination: 'stock' }, delay: { fixed: '5ms' }, ttl: '2m' }) }).then((r) => r.body.dump());
    await waitFor(async () => (await Promise.all(admins.map(runtimeFaultsOn))).every((ids) => ids.join() === 'api-delay,console-abort'), 10_000, 'two faults on every sidecar');
    await page.getByTestId('nav-gamedays').click();
    // Started without experiments: nothing to run, nothing ran (gamedays.test.ts runs some).
    await page.getByTestId('no-experiments').waitFor();
    await page.getByTestId('no-history').waitFor();
    await page.screenshot({ path: join(SHOTS, 'gamedays.png'), fullPage: true });
    await page.getByTestId('stop').click();
    await page.getByLabel('Reason').fill('browser test');
    await page.screenshot({ path: join(SHOTS, 'stop-confirm.png') });
    await page.getByTestId('stop-confirm').click();
    expect(await page.getByTestId('stop-result').textContent()).to.equal('Stopped: 2 faults removed.');
    expect(mesh.control.plane.faults.all()).to.deep.equal([]);
    await waitFor(async () => (await Promise.all(admins.map(runtimeFaultsOn))).every((ids) => ids.length === 0), 10_000, 'no runtime fault left on any sidecar');
    await page.getByTestId('nav-faults').click();
    await page.getByTestId('no-faults').waitFor();
  });

  it('a viewer sees everything and cannot inject: no form, the stop disabled, the API refuses', async () => {
    const viewer = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    viewer.setDefaultTimeout(10_000);
    await viewer.goto(`${mesh.control.url}/ui/faults`);
    await viewer.getByLabel('Token (admin or viewer)').fill(VIEWER);
    await viewer.getByRole('button', { name: 'Sign in' }).click();
    await viewer.getByTestId('role').filter({ hasText: 'viewer' }).waitFor();
    await viewer.getByTestId('nav-faults').click();
    await viewer.getByTestId('viewer-note').waitFor();
    expect(await viewer.getByTestId('fault-form').count()).to.equal(0);
    expect(await viewer.getByTestId('stop').isDisabled()).to.equal(true);
    // Straight at the API, with its session's own CSRF token: still refused.
    const statuses = await viewer.evaluate(async () => {
      const { csrf, csrfHeader } = (await (await fetch('/ui/session')).json()) as { csrf: string; csrfHeader: string };
      const put = await fetch('/faults/viewer-fault', { method: 'PUT', headers: { 'content-type': 'application/json', [csrfHeader]: csrf }, body: JSON.stringify({ abort: { status: 503 }, ttl: '1m' }) });
      const halt = await fetch('/halt', { method: 'POST', headers: { 'content-type': 'application/json', [csrfHeader]: csrf }, body: '{}' });
      return [put.status, halt.status, (await fetch('/faults')).status];
    });
    expect(statuses).to.deep.equal([403, 403, 200]);
    expect(mesh.control.plane.faults.get('viewer-fault')).to.equal(undefined);
    await viewer.getByTestId('nav-mesh').click();
    await viewer.getByTestId('node-payments').waitFor();
    await viewer.screenshot({ path: join(SHOTS, 'viewer-mesh.png'), fullPage: true });
    // Signing out ends the session on the server: the page is the sign-in form again.
    await viewer.getByTestId('signout').click();
    await viewer.getByLabel('Token (admin or viewer)').waitFor();
    expect(await viewer.evaluate(async () => (await fetch('/faults')).status)).to.equal(401);
    await viewer.context().close();
  });

  it('fits a phone\'s width (390 px): nothing wider than the screen but the graph\'s own scroll box', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const id of ['mesh', 'faults', 'gamedays'] as const) {
      await page.getByTestId(`nav-${id}`).click();
      await page.getByRole('heading', { level: 1 }).waitFor();
      expect([id, await page.evaluate('document.documentElement.scrollWidth')]).to.deep.equal([id, 390]);
      await page.screenshot({ path: join(SHOTS, `phone-${id}.png`), fullPage: true });
    }
    expect(traffic.sent()).to.be.below(MAX_REQUESTS);
  });

  it('says so when its session ends elsewhere: its live stream is cut and the sign-in comes back', async () => {
    await page.getByTestId('nav-mesh').click();
    await page.getByTestId('live-status').filter({ hasText: 'live' }).waitFor();
    const { csrf } = await page.evaluate(async () => (await (await fetch('/ui/session')).json()) as { csrf: string });
    const [cookie] = await page.context().cookies();
    // Signed out from somewhere else (another tab): the server cuts the page's stream.
    const out = await request(`${mesh.control.url}/ui/session`, { method: 'DELETE', headers: { cookie: `${cookie!.name}=${cookie!.value}`, 'x-faultline-csrf': csrf } });
    expect(out.statusCode).to.equal(204);
    await page.getByTestId('session-ended').waitFor();
    await page.getByLabel('Token (admin or viewer)').waitFor();
  });
});
