// Join tokens against a real control plane (its clock a fake one, so expiry is to the second): a token
// for payments lets a payments sidecar join — watch, ack, identity — and nothing else; another
// service's sidecar or identity and every operator route are refused with a 403 that says why; an
// expired, revoked or forged token is a 401 that says which, and expiry and revocation cut the watch
// streams the token opened; `faultline token create|revoke` as child processes.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar } from '../../src/control/agent.ts';
import { JoinTokenSigner } from '../../src/control/join-token.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { spiffeId } from '../../src/identity/spiffe.ts';
import { WorkloadKey } from '../../src/identity/workload.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';
import { runCli } from '../helpers/process.ts';

const ADMIN = 'tokens-test-admin-token';

interface Answer {
  status: number;
  body: { error?: string; code?: string } & Record<string, unknown>;
}

describe('join tokens', function () {
  this.timeout(30_000);
  const clock = new FakeClock();
  let dir: string;
  let adminFile: string;
  let control: RunningControlPlane;

  const api = async (method: string, path: string, token: string, body?: unknown): Promise<Answer> => {
    const response = await request(`${control.url}${path}`, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, body: text ? JSON.parse(text) : {} };
  };

  const make = async (service: string, ttl?: string): Promise<{ token: string; id: string }> => {
    const made = await api('POST', '/tokens', ADMIN, { service, ...(ttl && { ttl }) });
    expect(made.status, made.body.error).to.equal(201);
    return made.body as unknown as { token: string; id: string };
  };

  /** A watch stream: resolves `first` with the first snapshot's version, `ended` when the stream closes, however. */
  const watch = async (token: string, sidecar: string) => {
    const response = await request(`${control.url}/v1/watch?sidecar=${sidecar}`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).to.equal(200);
    let text = '';
    let gotFirst: (version: string) => void = () => {};
    const first = new Promise<string>((resolve) => (gotFirst = resolve));
    const ended = (async () => {
      try {
        for await (const chunk of response.body) {
          text += String(chunk);
          const match = /"version":"(\w+)"/.exec(text);
          if (match) gotFirst(match[1]!);
        }
      } catch {
        // Cut: the same to the reader as an end.
      }
      return 'ended';
    })();
    return { first, ended, cancel: () => response.body.destroy() };
  };

  const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
    Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref())]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-tokens-'));
    adminFile = join(dir, 'admin.token');
    await writeFile(adminFile, `${ADMIN}\n`, { mode: 0o600 });
    const paymentsApp = await freeAddress();
    const cartApp = await freeAddress();
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'tokens' },
      mtls: { mode: 'permissive', trustDomain: 'tokens.test' },
      services: [{ name: 'payments', endpoints: [{ address: paymentsApp }] }, { name: 'cart', endpoints: [{ address: cartApp }] }],
      sidecars: [await sidecarEntry('payments', paymentsApp), await sidecarEntry('cart', cartApp)],
    }));
    control = await startControlPlane({ listen: '127.0.0.1:0', token: ADMIN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml'), clock });
  });

  after(async () => {
    await control?.close();
  });

  it('lets a sidecar of its service join with it alone: the watch, its acks, its identity', async () => {
    const { token } = await make('payments', '24h');
    const joined = await startControlledSidecar({ url: control.url, token, name: 'payments', stateDir: join(dir, 'payments'), waitMs: 5_000 });
    try {
      expect(joined.sidecar.identity!.current.spiffeId).to.equal('spiffe://tokens.test/ns/default/sa/payments');
      const version = control.plane.state.version;
      await waitFor(() => control.plane.sidecars().find((s) => s.name === 'payments' && s.connected && s.version === version), 5_000, 'payments to acknowledge');
    } finally {
      await joined.close();
    }
  });

  it('refuses it another service\'s sidecar and identity, with a 403 naming both services', async () => {
    const { token } = await make('payments');
    const key = await WorkloadKey.generate();
    const csr = await key.csr('cart', spiffeId('tokens.test', 'default', 'cart'));
    const refusals = [
      await api('GET', '/v1/watch?sidecar=cart', token),
      await api('POST', '/v1/ack', token, { sidecar: 'cart', version: control.plane.state.version }),
      await api('POST', '/v1/identity', token, { sidecar: 'cart', csr }),
      await api('GET', '/v1/watch?sidecar=nobody', token),
    ];
    for (const refused of refusals) {
      expect([refused.status, refused.body.code]).to.deep.equal([403, 'FL_FORBIDDEN']);
      expect(refused.body.error).to.include('this join token is for service "payments"');
    }
    expect(refusals[2]!.body.error).to.equal('this join token is for service "payments"; no identity for sidecar "cart", which is of service "cart"');
    expect(refusals[3]!.body.error).to.include('sidecar "nobody" is not known as one of its sidecars');
    // The admin token may still do it all.
    expect((await api('POST', '/v1/identity', ADMIN, { sidecar: 'cart', csr })).status).to.equal(200);
  });

  it('refuses it every operator route with a 403 that says it is a join token', async () => {
    const { token } = await make('payments');
    const routes: [string, string][] = [
      ['GET', '/config'], ['PUT', '/config'], ['GET', '/faults'], ['PUT', '/faults/x'], ['DELETE', '/faults/x'], ['DELETE', '/faults'],
      ['POST', '/halt'], ['GET', '/sidecars'], ['GET', '/events'], ['GET', '/instances'], ['POST', '/tokens'], ['POST', '/tokens/revoked'],
      ['GET', '/tokens/revoked'], ['GET', '/v1/instances/x'], ['GET', '/no/such/route'],
    ];
    for (const [method, path] of routes) {
      const refused = await api(method, path, token);
      expect([refused.status, refused.body.code], `${method} ${path}`).to.deep.equal([403, 'FL_FORBIDDEN']);
      expect(refused.body.error).to.equal(`this is a join token for service "payments": it may only watch, acknowledge, get the identity of and register sidecars of "payments"; ${method} ${path} needs the admin token`);
    }
    expect(control.plane.faults.all().filter((f) => f.origin === 'runtime')).to.have.length(0);
  });

  it('a sidecar started with another service\'s token is refused, and says why', async () => {
    const { token } = await make('payments');
    const started = startControlledSidecar({ url: control.url, token, name: 'cart', stateDir: join(dir, 'cart'), waitMs: 5_000 });
    const error = await started.then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal('the control plane refused this sidecar (403): this join token is for service "payments"; sidecar "cart" is of service "cart"');
  });

  it('refuses a forged or altered token with a 401', async () => {
    const forged = (await new JoinTokenSigner('another-admin-token').sign('payments', 3_600_000, clock.now())).token;
    const { token } = await make('cart');
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const altered = `${header}.${Buffer.from(JSON.stringify({ ...claims, service: 'payments' })).toString('base64url')}.${signature}`;
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'faultline-join+jwt' })).toString('base64url')}.${payload}.x`;
    for (const bad of [forged, altered, unsigned]) {
      const refused = await api('GET', '/v1/watch?sidecar=payments', bad);
      expect([refused.status, refused.body.code]).to.deep.equal([401, 'FL_TOKEN_INVALID']);
    }
    expect((await api('GET', '/v1/watch?sidecar=payments', forged)).body.error).to.match(/signature does not verify.*another admin token/);
    expect((await api('GET', '/config', 'not-the-admin-token')).body).to.deep.equal({ error: 'the bearer token is neither this control plane\'s admin token nor a join token', code: 'FL_TOKEN_INVALID' });
  });

  it('revoked: its open watch stream is cut, and it is refused with a 401 that says so (faultline token revoke)', async () => {
    const { token, id } = await make('payments');
    const other = await make('payments');
    const stream = await watch(token, 'payments');
    const kept = await watch(other.token, 'payments');
    expect(await within(stream.first, 5_000, 'the first snapshot')).to.equal(control.plane.state.version);
    await within(kept.first, 5_000, 'the other stream\'s first snapshot');
    const tokenFile = join(dir, 'revoked.token');
    await writeFile(tokenFile, `${token}\n`);
    const revoked = await runCli(['token', 'revoke', '--control', control.url, '--token-file', adminFile, tokenFile]);
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect(revoked.stdout).to.match(new RegExp(`^revoked join token ${id} for payments at \\S+\\n$`));
    expect(await within(stream.ended, 5_000, 'the revoked token\'s stream to be cut')).to.equal('ended');
    const refused = await api('GET', '/v1/watch?sidecar=payments', token);
    expect([refused.status, refused.body.code]).to.deep.equal([401, 'FL_TOKEN_REVOKED']);
    expect(refused.body.error).to.match(new RegExp(`^the join token ${id} for "payments" was revoked at `));
    // Another token of the same service keeps its stream; by id, it goes too.
    const byId = await runCli(['token', 'revoke', '--control', control.url, '--token-file', adminFile, other.id]);
    expect(byId.code, byId.stderr).to.equal(0);
    expect(await within(kept.ended, 5_000, 'the second stream to be cut')).to.equal('ended');
    expect((await api('GET', '/tokens/revoked', ADMIN)).body.revoked).to.have.length(2);
  });

  it('expired: refused with a 401 that says so, and its stream is cut when it expires', async () => {
    const { token } = await make('payments', '1m');
    const stream = await watch(token, 'payments');
    await within(stream.first, 5_000, 'the first snapshot');
    await clock.advance(59_000);
    expect((await api('POST', '/v1/ack', token, { sidecar: 'payments', version: 'x' })).status).to.equal(204);
    await clock.advance(1_000);
    expect(await within(stream.ended, 5_000, 'the expired token\'s stream to be cut')).to.equal('ended');
    const refused = await api('GET', '/v1/watch?sidecar=payments', token);
    expect([refused.status, refused.body.code]).to.deep.equal([401, 'FL_TOKEN_EXPIRED']);
    expect(refused.body.error).to.equal(`the join token for "payments" expired at ${new Date(clock.now()).toISOString()}: make a new one (faultline token create)`);
  });

  it('faultline token create prints a token that works; bad input is refused before and by the control plane', async () => {
    const created = await runCli(['token', 'create', '--control', control.url, '--token-file', adminFile, '--service', 'cart', '--ttl', '24h']);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stderr).to.match(/^join token [0-9a-f]{32} for cart, valid until \S+\n$/);
    const token = created.stdout.trim();
    expect(created.stdout).to.equal(`${token}\n`);
    const stream = await watch(token, 'cart');
    await within(stream.first, 5_000, 'the first snapshot');
    stream.cancel();
    expect((await api('GET', '/v1/watch?sidecar=payments', token)).status).to.equal(403);

    const badTtl = await runCli(['token', 'create', '--control', control.url, '--token-file', adminFile, '--service', 'cart', '--ttl', '2y']);
    expect([badTtl.code, badTtl.stderr]).to.deep.equal([2, 'ttl "2y": expected a duration from 1s to 365d, such as "24h", "30m" or "7d"\n']);
    const unknown = await runCli(['token', 'create', '--control', control.url, '--token-file', adminFile, '--service', 'carts']);
    expect([unknown.code, unknown.stderr]).to.deep.equal([1, 'the control plane refused (400): no service "carts" in the mesh config (services: payments, cart)\n']);
  });
});
