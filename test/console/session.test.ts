// The console's sign-in and its guards, over HTTP against a real control plane (no browser): a form
// POST with the admin or the viewer token gives an httpOnly, SameSite=Strict session cookie; a change
// made with the cookie needs the session's CSRF token (else 403); a viewer changes nothing (session or
// bearer); signing out ends the session; the page and its assets carry a strict CSP; the bearer API
// is as it was. The browser tests (console.test.ts) drive the same through the page.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';

const ADMIN = 'console-session-admin-token';
const VIEWER = 'console-session-viewer-token';
const FAULT = { match: { destination: 'hello' }, abort: { status: 503 }, ttl: '1m' };

describe('console sessions (HTTP)', function () {
  this.timeout(20_000);
  let control: RunningControlPlane;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-console-session-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'console' }, services: [{ name: 'hello', endpoints: [{ address: '127.0.0.1:1' }] }] }));
    control = await startControlPlane({ listen: '127.0.0.1:0', token: ADMIN, viewerToken: VIEWER, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
  });
  after(() => control?.close());

  async function signIn(token: string): Promise<{ status: number; location: string | undefined; cookie: string | undefined; setCookie: string }> {
    const res = await request(`${control.url}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
    await res.body.dump();
    const setCookie = String(res.headers['set-cookie'] ?? '');
    return { status: res.statusCode, location: res.headers.location as string | undefined, cookie: /^(faultline_session=[^;]+)/.exec(setCookie)?.[1], setCookie };
  }

  async function api(method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const res = await request(`${control.url}${path}`, { method: method as 'GET', headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  it('serves the page and its assets without a token, under a strict Content-Security-Policy', async () => {
    const page = await request(`${control.url}/ui`);
    const html = await page.body.text();
    expect(page.statusCode).to.equal(200);
    expect(page.headers['content-security-policy']).to.include("script-src 'self'").and.include("frame-ancestors 'none'").and.not.include('unsafe');
    expect(page.headers['x-frame-options']).to.equal('DENY');
    expect(html).to.not.match(/<script>|<style>|style=/);
    const script = /src="(\/ui\/assets\/console-[^"]+\.js)"/.exec(html)![1]!;
    const asset = await request(`${control.url}${script}`);
    const js = await asset.body.text();
    expect([asset.statusCode, asset.headers['content-type']]).to.deep.equal([200, 'text/javascript; charset=utf-8']);
    expect(js).to.not.match(/\beval\(|new Function\(/);
    // The API itself still wants a token.
    expect((await api('GET', '/faults', {})).status).to.equal(401);
  });

  it('refuses a wrong token with a redirect that carries no token', async () => {
    const refused = await signIn('not-the-token');
    expect([refused.status, refused.location, refused.cookie]).to.deep.equal([303, '/ui?signin=refused', undefined]);
  });

  it('signs the admin in to an httpOnly SameSite=Strict cookie; changes need its CSRF token', async () => {
    const admin = await signIn(ADMIN);
    expect([admin.status, admin.location]).to.deep.equal([303, '/ui']);
    expect(admin.setCookie).to.match(/HttpOnly/i).and.match(/SameSite=Strict/i).and.match(/Path=\//);
    const cookie = { cookie: admin.cookie! };
    const who = await api('GET', '/ui/session', cookie);
    expect(who.json.role).to.equal('admin');
    const csrf = who.json.csrf as string;
    expect(csrf).to.match(/^[\w-]{43}$/);
    expect((await api('GET', '/faults', cookie)).status).to.equal(200);
    const without = await api('PUT', '/faults/no-csrf', cookie, FAULT);
    expect([without.status, without.json.error]).to.deep.equal([403, "a console request that changes anything must carry the session's CSRF token in x-faultline-csrf"]);
    expect((await api('PUT', '/faults/wrong-csrf', { ...cookie, 'x-faultline-csrf': `${csrf}x` }, FAULT)).status).to.equal(403);
    expect((await api('POST', '/halt', cookie, {})).status).to.equal(403);
    expect(control.plane.faults.all()).to.have.length(0);
    const put = await api('PUT', '/faults/with-csrf', { ...cookie, 'x-faultline-csrf': csrf }, FAULT);
    expect(put.status).to.equal(200);
    expect(control.plane.faults.all().map((f) => f.id)).to.deep.equal(['with-csrf']);
    // A bearer call needs no CSRF token: nothing ambient about a header the caller sets itself.
    expect((await api('DELETE', '/faults/with-csrf', { authorization: `Bearer ${ADMIN}` })).status).to.equal(204);
    // Signing out ends the session: the cookie opens nothing after.
    expect((await api('DELETE', '/ui/session', { ...cookie, 'x-faultline-csrf': csrf })).status).to.equal(204);
    expect((await api('GET', '/faults', cookie)).status).to.equal(401);
  });

  it('lets a viewer read everything and change nothing, signed in or by bearer', async () => {
    const viewer = await signIn(VIEWER);
    const cookie = { cookie: viewer.cookie! };
    const who = await api('GET', '/ui/session', cookie);
    expect(who.json.role).to.equal('viewer');
    for (const path of ['/faults', '/sidecars', '/instances', '/gamedays', '/schedule', '/config']) {
      const read = await request(`${control.url}${path}`, { headers: cookie });
      await read.body.dump();
      expect([path, read.statusCode]).to.deep.equal([path, 200]);
    }
    const csrf = { ...cookie, 'x-faultline-csrf': who.json.csrf as string };
    for (const [method, path] of [['PUT', '/faults/viewer'], ['POST', '/halt'], ['DELETE', '/faults'], ['PUT', '/config'], ['POST', '/tokens']] as const) {
      expect([method, path, (await api(method, path, csrf, FAULT)).status]).to.deep.equal([method, path, 403]);
    }
    const bearer = await api('PUT', '/faults/viewer', { authorization: `Bearer ${VIEWER}` }, FAULT);
    expect([bearer.status, bearer.json.error]).to.deep.equal([403, 'a viewer reads and changes nothing: PUT /faults/viewer needs the admin token']);
    expect((await api('GET', '/faults', { authorization: `Bearer ${VIEWER}` })).status).to.equal(200);
    // Not a sidecar either.
    expect((await api('GET', '/v1/uplink?sidecar=hello', { authorization: `Bearer ${VIEWER}` })).status).to.equal(403);
    expect(control.plane.faults.all()).to.have.length(0);
    // It may sign out, though (with its CSRF token), and is signed out after.
    expect((await api('DELETE', '/ui/session', cookie)).status).to.equal(403);
    expect((await api('DELETE', '/ui/session', csrf)).status).to.equal(204);
    expect((await api('GET', '/faults', cookie)).status).to.equal(401);
  });

  it('refuses a sign-in posted from another origin', async () => {
    const res = await request(`${control.url}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: `token=${ADMIN}` });
    await res.body.dump();
    expect([res.statusCode, res.headers['set-cookie']]).to.deep.equal([403, undefined]);
  });

  it('refuses a viewer token that is the admin token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-console-same-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'c' }, services: [{ name: 'hello', endpoints: [{ address: '127.0.0.1:1' }] }] }));
    const started = startControlPlane({ listen: '127.0.0.1:0', token: ADMIN, viewerToken: ADMIN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
    const error = await started.then((c) => c.close().then(() => undefined), (e: unknown) => e as Error);
    expect(error?.message).to.equal('the viewer token is the admin token: give the viewer a token of its own');
  });
});
