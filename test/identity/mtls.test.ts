// mTLS between sidecars, end to end: identities issued by the control plane's CA for each sidecar's
// CSR; strict inbound refuses plaintext, clients without a certificate and certificates of another CA
// (checked with openssl s_client), and takes curl with a mesh certificate; the caller's identity comes
// from its certificate; outbound refuses a server with the wrong SPIFFE ID; certificates rotate under
// load with no failed request; permissive takes both plaintext and mTLS.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { MeshCa } from '../../src/identity/ca.ts';
import { SidecarIdentity } from '../../src/identity/provider.ts';
import { WorkloadKey } from '../../src/identity/workload.ts';
import { spiffeId } from '../../src/identity/spiffe.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { call, load, send } from '../helpers/client.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const run = promisify(execFile);
const TOKEN = 'mtls-test-token';

async function mesh(mode: 'strict' | 'permissive', upstream: Upstream, certTtl = '1h') {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-mtls-'));
  const checkoutApp = await freeAddress();
  const config = {
    mesh: { name: 'mtls' },
    mtls: { mode, trustDomain: 'shop.test', certTtl },
    services: [
      { name: 'checkout', endpoints: [{ address: checkoutApp }] },
      { name: 'payments', endpoints: [{ address: upstream.address }], healthCheck: { path: '/healthz', interval: '200ms' } },
      // stock's one endpoint is payments' app: reached through payments' sidecar, which is not stock.
      { name: 'stock', endpoints: [{ address: upstream.address }] },
    ],
    sidecars: [await sidecarEntry('checkout', checkoutApp), await sidecarEntry('payments', upstream.address)],
  };
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  const control = await startControlPlane({ listen: '127.0.0.1:0', token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
  const start = (name: string) => startControlledSidecar({ url: control.url, token: TOKEN, name, stateDir: join(dir, name), waitMs: 2_000 });
  const checkout = await start('checkout');
  const payments = await start('payments');
  // checkout's first health check of payments may have run before payments' sidecar was up.
  await waitFor(() => checkout.sidecar.clusters.get('payments')!.endpoints.every((e) => e.available), 5_000, 'payments healthy from checkout');
  return { dir, control, checkout, payments };
}

/** A certificate for `service` from the control plane, as a sidecar gets one; files for openssl and curl. */
async function workloadFiles(dir: string, control: RunningControlPlane, sidecar: string, service: string, name: string) {
  const key = await WorkloadKey.generate();
  const response = await request(`${control.url}/v1/identity`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sidecar, csr: await key.csr(service, spiffeId('shop.test', 'default', service)) }),
  });
  const issued = (await response.body.json()) as { certPem: string; caPem: string };
  const files = { key: join(dir, `${name}.key`), cert: join(dir, `${name}.crt`), ca: join(dir, 'ca.crt') };
  await writeFile(files.key, key.keyPem, { mode: 0o600 });
  await writeFile(files.cert, issued.certPem);
  await writeFile(files.ca, issued.caPem);
  return files;
}

/** The error a promise rejects with, or undefined when it resolves. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

/** openssl s_client through a TLS 1.3 handshake and one HTTP request; resolves with what it printed. */
async function sClient(address: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', address, '-tls1_3', '-quiet', '-ign_eof', ...args], { timeout: 5_000 }, (_error, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
    child.stdin!.end('GET / HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n');
  });
}

describe('mTLS between sidecars (strict)', function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let m: Awaited<ReturnType<typeof mesh>>;

  before(async () => {
    upstream = await startUpstream('payments');
    upstream.handler = (req, res) => res.end(req.url === '/healthz' ? 'ok' : JSON.stringify({ source: req.headers['x-faultline-source'] }));
    m = await mesh('strict', upstream);
  });

  after(async () => {
    for (const s of [m.checkout, m.payments] as ControlledSidecar[]) await s.close();
    await m.control.close();
    await upstream.close();
  });

  it('carries calls between sidecars over mTLS; the caller is who its certificate says', async () => {
    const done: MeshEvents['request.done'][] = [];
    const off = m.payments.sidecar.events.on('request.done', (e) => e.path !== '/healthz' && done.push(e));
    const reply = await send(m.checkout.sidecar.addresses.outbound!, { headers: { host: 'payments', 'x-faultline-source': 'impostor' } });
    off();
    expect(reply.status).to.equal(200);
    expect(done.map((d) => [d.direction, d.source])).to.deep.equal([['inbound', 'checkout']]);
    const cert = new X509Certificate(m.payments.sidecar.identity!.current.certPem);
    expect(cert.subjectAltName).to.equal('URI:spiffe://shop.test/ns/default/sa/payments');
  });

  it('refuses plaintext, a client without a certificate, and one from another CA; takes a mesh certificate', async () => {
    const inbound = m.payments.sidecar.addresses.inbound!;
    expect(await failure(send(inbound, { headers: { host: 'payments' }, timeoutMs: 3_000 })), 'plaintext').to.be.instanceOf(Error);
    const files = await workloadFiles(m.dir, m.control, 'checkout', 'checkout', 'checkout');
    const noCert = await sClient(inbound, ['-CAfile', files.ca]);
    expect(noCert).to.not.include('HTTP/1.1 200');
    expect(noCert).to.match(/alert|error/i);
    // Another CA's certificate for the very same SPIFFE ID.
    const other = await MeshCa.create('shop.test');
    const otherKey = await WorkloadKey.generate();
    const forged = await other.sign(await otherKey.csr('checkout', spiffeId('shop.test', 'default', 'checkout')), 'checkout');
    await writeFile(join(m.dir, 'forged.key'), otherKey.keyPem, { mode: 0o600 });
    await writeFile(join(m.dir, 'forged.crt'), forged.certPem);
    const wrongCa = await sClient(inbound, ['-CAfile', files.ca, '-cert', join(m.dir, 'forged.crt'), '-key', join(m.dir, 'forged.key')]);
    expect(wrongCa).to.not.include('HTTP/1.1 200');
    const good = await sClient(inbound, ['-CAfile', files.ca, '-cert', files.cert, '-key', files.key, '-verify_return_error']);
    expect(good).to.include('HTTP/1.1 200');
    // curl with the mesh certificate (-k: a workload certificate names a SPIFFE ID, not a host name;
    // openssl above verified the server's chain).
    const curl = await run('curl', ['-sS', '-k', '--tlsv1.3', '--cert', files.cert, '--key', files.key, '-H', 'host: payments', `https://${inbound}/`]);
    expect(JSON.parse(curl.stdout)).to.deep.equal({ source: 'checkout' });
    expect(await failure(run('curl', ['-sS', '-k', '--tlsv1.3', '-H', 'host: payments', `https://${inbound}/`])), 'curl without a certificate').to.be.instanceOf(Error);
  });

  it('refuses a server whose SPIFFE ID is not the destination\'s', async () => {
    const reply = await call(m.checkout.sidecar.addresses.outbound!, 'stock');
    expect(reply.status).to.equal(503);
    expect(reply.headers['x-faultline-flags']).to.equal('UF');
    expect(reply.json<{ error: { message: string } }>().error.message).to.include('not spiffe://shop.test/ns/default/sa/stock');
  });

  it('rotates certificates under load with no failed request', async () => {
    const before = [m.checkout.sidecar.identity!.current.serial, m.payments.sidecar.identity!.current.serial];
    let rotations = 0;
    const traffic = load(400, 8, async (i) => {
      if (i % 100 === 50) {
        await Promise.all([m.checkout.sidecar.identity!.renew(), m.payments.sidecar.identity!.renew()]);
        rotations++;
      }
      return (await call(m.checkout.sidecar.addresses.outbound!, 'payments', `/r${i}`, { connection: 'close' })).status;
    });
    const statuses = await traffic;
    expect(rotations).to.equal(4);
    expect(statuses.filter((s) => s !== 200)).to.deep.equal([]);
    const after = [m.checkout.sidecar.identity!.current.serial, m.payments.sidecar.identity!.current.serial];
    expect(after[0]).to.not.equal(before[0]);
    expect(after[1]).to.not.equal(before[1]);
  });
});

describe('mTLS (permissive)', function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let m: Awaited<ReturnType<typeof mesh>>;

  before(async () => {
    upstream = await startUpstream('payments');
    upstream.handler = (req, res) => res.end(req.url === '/healthz' ? 'ok' : JSON.stringify({ source: req.headers['x-faultline-source'] }));
    m = await mesh('permissive', upstream);
  });

  after(async () => {
    for (const s of [m.checkout, m.payments]) await s.close();
    await m.control.close();
    await upstream.close();
  });

  it('takes plaintext (caller named by header) and mTLS (caller named by certificate) on one port', async () => {
    const plain = await send(m.payments.sidecar.addresses.inbound!, { headers: { host: 'payments', 'x-faultline-source': 'legacy' } });
    expect(plain.json()).to.deep.equal({ source: 'legacy' });
    const meshed = await send(m.checkout.sidecar.addresses.outbound!, { headers: { host: 'payments' } });
    expect(meshed.json()).to.deep.equal({ source: 'checkout' });
  });
});

describe('mTLS certificate renewal on its own schedule', function () {
  this.timeout(30_000);

  // When renewal is due is checked exactly on a fake clock (below); here, with real time, that it
  // happens on its own before the certificate ends and that traffic does not notice.
  it('renews a 6 s certificate on its own before it ends, under traffic, with no failed request', async () => {
    const upstream = await startUpstream('payments');
    upstream.handler = (_req, res) => res.end('ok');
    const m = await mesh('strict', upstream, '6s');
    try {
      const identity = m.payments.sidecar.identity!;
      const first = identity.current;
      const renewed = new Promise<number>((resolve) => identity.onRotate(() => resolve(Date.now())));
      const statuses: number[] = [];
      let stop = false;
      const traffic = (async () => {
        while (!stop) statuses.push((await call(m.checkout.sidecar.addresses.outbound!, 'payments', '/', { connection: 'close' })).status);
      })();
      const at = await renewed;
      // and past the first certificate's end, on the renewed one
      await waitFor(() => Date.now() > first.notAfter.getTime() + 200, 5_000, 'the first certificate to expire');
      stop = true;
      await traffic;
      // Not before 2/3 of the lifetime the sidecar had (timers do not fire early; 20 ms for the
      // clock's granularity), and before the certificate ended: 6 s (whole seconds: 5–6 s as the
      // sidecar has it) leaves renewal a third of that, seconds, even on a busy machine.
      const due = first.issuedAt.getTime() + ((first.notAfter.getTime() - first.issuedAt.getTime()) * 2) / 3;
      expect(at - due).to.be.at.least(-20);
      expect(at).to.be.below(first.notAfter.getTime());
      expect(identity.current.serial).to.not.equal(first.serial);
      expect(statuses.length).to.be.above(10);
      expect(statuses.filter((s) => s !== 200)).to.deep.equal([]);
    } finally {
      for (const s of [m.checkout, m.payments]) await s.close();
      await m.control.close();
      await upstream.close();
    }
  });
});

describe('mTLS certificate renewal schedule, on a fake clock', function () {
  let dir: string;
  let control: RunningControlPlane;
  let clock: FakeClock;
  let identity: SidecarIdentity | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-renewal-'));
    const config = {
      mesh: { name: 'renewal' },
      mtls: { mode: 'strict', trustDomain: 'shop.test', certTtl: '1h' },
      services: [{ name: 'payments', endpoints: [{ address: await freeAddress() }] }],
      sidecars: [await sidecarEntry('payments', await freeAddress())],
    };
    await writeFile(join(dir, 'mesh.yaml'), stringify(config));
    control = await startControlPlane({ listen: '127.0.0.1:0', token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
    await mkdir(join(dir, 'payments'));
    // Certificates carry the CA's real times: the fake time starts at the real one.
    clock = new FakeClock(Date.now());
    identity = await SidecarIdentity.obtain({ url: control.url, token: TOKEN, sidecar: 'payments', service: 'payments', trustDomain: 'shop.test', namespace: 'default', stateDir: join(dir, 'payments'), clock });
  });

  afterEach(async () => {
    identity?.close();
    await control.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Two thirds of the lifetime the sidecar has: from when it got the certificate, in whole ms. */
  const dueIn = (notAfter: Date) => Math.floor(((notAfter.getTime() - clock.now()) * 2) / 3);

  it('renews at 2/3 of the lifetime from issue, not before, then schedules the next the same way', async () => {
    const first = identity!.current;
    expect(first.issuedAt.getTime()).to.equal(clock.now());
    const due = dueIn(first.notAfter);
    // 1 h certificates: about 40 min, give or take whole seconds and how long the CA took to answer.
    expect(due).to.be.within((2 / 3) * 3_590_000, (2 / 3) * 3_610_000);
    expect(clock.due).to.deep.equal([due]);
    const rotated: string[] = [];
    identity!.onRotate((next) => rotated.push(next.serial));
    await clock.advance(due - 1);
    expect([rotated, clock.due]).to.deep.equal([[], [1]]);
    await clock.advance(1);
    await waitFor(() => rotated.length === 1, 5_000, 'the renewal');
    const second = identity!.current;
    expect([second.serial, second.issuedAt.getTime()]).to.deep.equal([rotated[0], clock.now()]);
    expect(second.serial).to.not.equal(first.serial);
    expect(clock.due).to.deep.equal([dueIn(second.notAfter)]);
  });

  it('tries a failed renewal again a second later, then backs off (2 s, 4 s, … at most 30 s) until one succeeds', async () => {
    const due = clock.due[0]!;
    const serial = identity!.current.serial;
    await control.close();
    await clock.advance(due);
    for (const retry of [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]) {
      await waitFor(() => clock.due[0] === retry, 5_000, `a retry in ${retry} ms`);
      expect(clock.due).to.have.length(1);
      await clock.advance(retry);
    }
    expect(identity!.current.serial).to.equal(serial);
    // The control plane is back (same address, same CA): the next retry renews, and renewal is on schedule again.
    await waitFor(() => clock.due[0] === 30_000, 5_000, 'the next retry');
    control = await startControlPlane({ listen: new URL(control.url).host, token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
    const rotated: string[] = [];
    identity!.onRotate((next) => rotated.push(next.serial));
    await clock.advance(30_000);
    await waitFor(() => rotated.length === 1, 5_000, 'the renewal');
    expect(rotated[0]).to.not.equal(serial);
    expect(clock.due).to.deep.equal([dueIn(identity!.current.notAfter)]);
  });
});
