// ControlAccess on its own, behind small express apps that stand for control planes: instance routes
// allowed only for the token's service (mayActAs); a revocation written by one replica refused by
// another sharing the store, which cuts the token's streams there too; revocations kept across a
// restart until the token would have expired; the admin token's rotation ending every join token; a
// token of another kind or type refused; ttl parsing; the service of a sidecar by entry and by name.
import { expect } from 'chai';
import express from 'express';
import { SignJWT } from 'jose';
import { hkdfSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { ControlAccess, allowedAs, serviceOfSidecar } from '../../src/control/auth.ts';
import { JoinTokenRefused, MAX_JOIN_TTL_MS, parseTtl } from '../../src/control/join-token.ts';
import type { ControlPlane } from '../../src/control/plane.ts';
import { FileStore } from '../../src/control/store.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { snapshotOf } from '../helpers/mesh.ts';

const ADMIN = 'auth-test-admin-token';

/** A stand-in control plane: the access check, a stub of the instance routes, a watch that stays open. */
async function replica(access: ControlAccess): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(access.authenticate);
  app.put('/v1/instances/:id', express.json(), (req, res) => {
    const { service } = req.body as { service?: string };
    if (!allowedAs(res, service, `instance "${req.params.id}"`)) return;
    res.status(204).end();
  });
  app.get('/v1/watch', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': open\n\n');
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<JoinTokenRefused> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).to.be.instanceOf(JoinTokenRefused);
  return error as JoinTokenRefused;
}

describe('join token access', () => {
  it('instance routes: a join token acts as an instance of its own service only; the admin token as any', async () => {
    const access = await ControlAccess.open(ADMIN, new FileStore(await mkdtemp(join(tmpdir(), 'faultline-auth-'))));
    const cp = await replica(access);
    try {
      const { token } = await access.issue('payments', 3_600_000);
      const put = async (bearer: string, service: string) => {
        const response = await request(`${cp.url}/v1/instances/i-1`, { method: 'PUT', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify({ service }) });
        return { status: response.statusCode, text: await response.body.text() };
      };
      expect((await put(token, 'payments')).status).to.equal(204);
      expect(await put(token, 'cart')).to.deep.equal({ status: 403, text: JSON.stringify({ error: 'this join token is for service "payments"; instance "i-1" is of service "cart"', code: 'FL_FORBIDDEN' }) });
      expect((await put(ADMIN, 'cart')).status).to.equal(204);
    } finally {
      await cp.close();
      access.close();
    }
  });

  it('a revocation written by one replica is refused by another sharing the store, which cuts the token\'s streams', async () => {
    const store = new FileStore(await mkdtemp(join(tmpdir(), 'faultline-auth-')));
    const one = await ControlAccess.open(ADMIN, store);
    const two = await ControlAccess.open(ADMIN, store);
    const cp = await replica(two);
    try {
      const { token, claims } = await one.issue('payments', 3_600_000);
      const response = await request(`${cp.url}/v1/watch`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.statusCode).to.equal(200);
      const ended = (async () => {
        try {
          for await (const _ of response.body);
        } catch {
          // Cut.
        }
      })();
      await one.revoke(token);
      await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the stream on the other replica was not cut')), 5_000).unref())]);
      expect((await refusal(two.check(token))).message).to.equal(`the join token ${claims.jti} for "payments" was revoked at ${one.revocations.get(claims.jti)!.revokedAt}`);
    } finally {
      await cp.close();
      one.close();
      two.close();
    }
  });

  it('keeps revocations across a restart, until the token would have expired', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-auth-'));
    const clock = new FakeClock();
    const before = await ControlAccess.open(ADMIN, new FileStore(dir), clock);
    const { token, claims } = await before.issue('payments', 3_600_000);
    await before.revoke(token);
    before.close();
    const after = await ControlAccess.open(ADMIN, new FileStore(dir), clock);
    expect((await refusal(after.check(token))).reason).to.equal('revoked');
    after.close();
    await clock.advance(3_600_000);
    const later = await ControlAccess.open(ADMIN, new FileStore(dir), clock);
    expect((await refusal(later.check(token))).reason).to.equal('expired');
    expect(await new FileStore(dir).list('tokens/revoked/')).to.deep.equal([]);
    later.close();
  });

  it('a join token verified once (its signature not checked again) is still refused once it expires or is revoked', async () => {
    const clock = new FakeClock();
    const access = await ControlAccess.open(ADMIN, new FileStore(await mkdtemp(join(tmpdir(), 'faultline-auth-'))), clock);
    try {
      const short = await access.issue('payments', 60_000);
      const long = await access.issue('payments', 3_600_000);
      for (const { token } of [short, long]) for (let i = 0; i < 2; i++) expect((await access.check(token)).service).to.equal('payments');
      await clock.advance(60_000);
      const expired = await refusal(access.check(short.token));
      expect([expired.reason, expired.message]).to.deep.equal(['expired', `the join token for "payments" expired at ${new Date(short.claims.expiresAt).toISOString()}: make a new one (faultline token create)`]);
      expect((await access.check(long.token)).service).to.equal('payments');
      await access.revoke(long.claims.jti);
      expect((await refusal(access.check(long.token))).reason).to.equal('revoked');
    } finally {
      access.close();
    }
  });

  it('rotating the admin token ends every join token made with the old one', async () => {
    const store = new FileStore(await mkdtemp(join(tmpdir(), 'faultline-auth-')));
    const old = await ControlAccess.open(ADMIN, store);
    const { token } = await old.issue('payments', 3_600_000);
    expect((await old.check(token)).service).to.equal('payments');
    const rotated = await ControlAccess.open('a-new-admin-token', store);
    const refused = await refusal(rotated.check(token));
    expect([refused.reason, refused.message]).to.deep.equal(['invalid', 'the join token\'s signature does not verify: it was altered, or made with another admin token (rotating the admin token invalidates every join token)']);
    old.close();
    rotated.close();
  });

  it('a token signed with the same key but of another kind or type does not pass for a join token', async () => {
    const access = await ControlAccess.open(ADMIN, new FileStore(await mkdtemp(join(tmpdir(), 'faultline-auth-'))));
    const key = new Uint8Array(hkdfSync('sha256', ADMIN, 'faultline join tokens', 'faultline/join-token/v1/hs256', 32));
    const sign = (claims: Record<string, unknown>, typ: string) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ }).setIssuer('faultline').setJti('0'.repeat(32)).setIssuedAt().setExpirationTime('1h').sign(key);
    // The derivation as documented: a join token made by hand with it passes.
    expect((await access.check(await sign({ kind: 'join', service: 'payments' }, 'faultline-join+jwt'))).service).to.equal('payments');
    expect((await refusal(access.check(await sign({ kind: 'admin', service: 'payments' }, 'faultline-join+jwt')))).message).to.equal('a token of kind "admin" is not a join token');
    expect((await refusal(access.check(await sign({ kind: 'join', service: 'payments' }, 'JWT')))).reason).to.equal('invalid');
    access.close();
  });

  it('ttl: durations from 1s to 365d', () => {
    expect([parseTtl('24h'), parseTtl('30m'), parseTtl('1s'), parseTtl('7d'), parseTtl('365d')]).to.deep.equal([86_400_000, 1_800_000, 1_000, 604_800_000, MAX_JOIN_TTL_MS]);
    for (const bad of ['500ms', '366d', '2y', '', '-1h']) expect(() => parseTtl(bad), bad).to.throw(/expected a duration from 1s to 365d/);
  });

  it('the service of a sidecar: its entry\'s, else its registered instance\'s, else the longest service it is named after', () => {
    const plane = {
      instance: (name: string) => (name === 'blue-7' ? { name, service: 'stock' } : undefined),
      instances: () => [{ name: 'blue-7', service: 'stock' }],
      hasInstancesOf: (service: string) => service === 'stock',
      snapshot: snapshotOf({
        mesh: { name: 'names' },
        services: ['pay', 'pay-ments', 'cart'].map((name, i) => ({ name, endpoints: [{ address: `127.0.0.1:${20_000 + i}` }] })),
        sidecars: [{ name: 'pay-ments-blue', service: 'cart', app: '127.0.0.1:20000', outbound: '127.0.0.1:20010', admin: '127.0.0.1:20011', inbound: '127.0.0.1:20012' }],
      }),
    } as unknown as ControlPlane;
    const of = (name: string) => serviceOfSidecar(plane, name);
    expect([of('pay-ments-blue'), of('pay-ments-7'), of('pay-7'), of('pay'), of('cart'), of('carts'), of('stock-1'), of('blue-7'), of('web-1')]).to.deep.equal(['cart', 'pay-ments', 'pay', 'pay', 'cart', undefined, 'stock', 'stock', undefined]);
  });
});
