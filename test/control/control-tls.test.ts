// The control plane's API over TLS: `--tls auto` serves a certificate from the mesh CA (SANs: the listen
// address and --tls-san names; TLS 1.2+, HTTP/1.1; renewed before it ends) and writes the CA for
// clients; a sidecar given that CA joins over https — config, identity, registration, its events up the
// uplink — and one without it is refused at once, saying why and what fixes it; `faultline stop` and
// `token create` take --control-ca; http:// to the TLS port and https:// to a plain one fail clearly;
// an operator's certificate and key files serve as well, and a pair that does not match is refused.
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { ControlTlsError, controlRequest } from '../../src/http/control-transport.ts';
import { MeshClient, targetClient } from '../../src/experiments/mesh-client.ts';
import { MeshCa } from '../../src/identity/ca.ts';
import { send } from '../helpers/client.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { CLI, firstLine, runCli, startSidecarWith, stopProcess } from '../helpers/process.ts';

const TOKEN = 'control-tls-test-token';

/** The certificate a TLS server at `address` presents (unverified: the test looks at it), and what was negotiated. */
function peer(address: string, options: { maxVersion?: 'TLSv1.1' | 'TLSv1.3'; ca?: string; servername?: string } = {}): Promise<{ cert: PeerCertificate; protocol: string | null; alpn: string | false | null; authorized: boolean }> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: address.slice(0, colon),
      port: Number(address.slice(colon + 1)),
      rejectUnauthorized: false,
      ALPNProtocols: ['h2', 'http/1.1'],
      ...(options.servername && { servername: options.servername }),
      ...(options.ca && { ca: options.ca }),
      // OpenSSL's default security level would keep this client from offering TLS 1.1 at all: lowered, the refusal is the server's.
      ...(options.maxVersion && { maxVersion: options.maxVersion, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    }, () => {
      resolve({ cert: socket.getPeerCertificate(), protocol: socket.getProtocol(), alpn: socket.alpnProtocol, authorized: socket.authorized });
      socket.end();
    });
    socket.once('error', reject);
  });
}

const hostPort = (url: string) => new URL(url).host;

describe('control plane API over TLS', function () {
  this.timeout(60_000);
  let dir: string;
  let meshFile: string;
  let control: RunningControlPlane;
  let ca: string;
  let app: Upstream;
  const sidecars: ControlledSidecar[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-control-tls-'));
    app = await startUpstream('payments-1');
    const file = join(dir, 'mesh.yaml');
    meshFile = file;
    await writeFile(file, stringify({ mesh: { name: 'tls' }, mtls: { mode: 'permissive', trustDomain: 'tls.test' }, services: [{ name: 'payments' }] }));
    await writeFile(join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'control'), configFile: file, tls: { mode: 'auto', sans: ['cp1.tls.test', '10.213.0.9'] } });
    ca = await readFile(control.caFile!, 'utf8');
  });

  after(async () => {
    for (const child of children) await stopProcess(child);
    for (const sidecar of sidecars) await sidecar.close().catch(() => undefined);
    await control?.close();
    await app?.close();
  });

  it('serves TLS 1.2+ over HTTP/1.1 with a certificate from the mesh CA naming its listen address and --tls-san names', async () => {
    expect(control.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    const served = await peer(hostPort(control.url), { ca });
    expect(served.authorized, 'verifies against control-ca.pem').to.equal(true);
    expect(served.protocol).to.be.oneOf(['TLSv1.2', 'TLSv1.3']);
    expect(served.alpn).to.equal('http/1.1');
    expect(served.cert.subjectaltname?.split(', ').sort()).to.deep.equal(['DNS:cp1.tls.test', 'IP Address:10.213.0.9', 'IP Address:127.0.0.1']);
    const leaf = new X509Certificate(served.cert.raw);
    expect(leaf.checkIssued(new X509Certificate(ca))).to.equal(true);
    expect(leaf.ca).to.equal(false);
    // Nothing older than TLS 1.2 is spoken: the server answers a TLS 1.1 client with a protocol_version alert.
    const old = await peer(hostPort(control.url), { maxVersion: 'TLSv1.1' }).catch((error: unknown) => error);
    expect((old as { code?: string }).code).to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('writes the CA certificate (no key) to <state-dir>/control-ca.pem, 0644, and serves it at GET /ca.pem without a token', async () => {
    expect(control.caFile).to.equal(join(dir, 'control', 'control-ca.pem'));
    expect((await stat(control.caFile!)).mode & 0o777).to.equal(0o644);
    expect(ca).to.match(/^-----BEGIN CERTIFICATE-----/);
    expect(ca).not.to.match(/PRIVATE KEY/);
    expect(new X509Certificate(ca).ca).to.equal(true);
    expect(control.caFingerprint).to.equal(new X509Certificate(ca).fingerprint256);
    const response = await controlRequest(`${control.url}/ca.pem`, {}, ca);
    expect(response.statusCode).to.equal(200);
    expect(await response.body.text()).to.equal(ca);
    // Every other route still wants the token.
    const config = await controlRequest(`${control.url}/config`, {}, ca);
    await config.body.dump();
    expect(config.statusCode).to.equal(401);
  });

  it('lets a sidecar given the CA join over https: config, identity, registration, and its events up the uplink', async () => {
    const inbound = await freeAddress();
    const sidecar = await startControlledSidecar({
      url: control.url,
      token: TOKEN,
      ca,
      stateDir: join(dir, 'sidecars', 'payments-1'),
      waitMs: 10_000,
      join: { service: 'payments', name: 'payments-1', app: app.address, inbound, admin: await freeAddress(), labels: { version: 'v1' } },
    });
    sidecars.push(sidecar);
    // Its config came down the watch stream, and its certificate from /v1/identity, both over TLS.
    expect(sidecar.client.version).to.equal(control.plane.state.version);
    expect(control.plane.instances().map((i) => [i.name, i.address])).to.deep.equal([['payments-1', inbound]]);
    // Its events reach the control plane's merged stream over the uplink.
    const mesh = new MeshClient(control.url, TOKEN, ca);
    const seen: Record<string, unknown>[] = [];
    const following = mesh.follow((event) => seen.push(event), () => undefined);
    try {
      await following.ready;
      await waitFor(async () => {
        await send(inbound, { headers: { host: 'payments' } });
        return seen.some((e) => e.type === 'request.done' && e.sidecar === 'payments-1');
      }, 15_000, 'a request.done of payments-1 through the uplink');
    } finally {
      following.stop();
    }
    expect((await mesh.sidecars()).sidecars.map((s) => [s.name, s.connected])).to.deep.equal([['payments-1', true]]);
  });

  it('refuses a sidecar without the CA at once: the URL, the reason, and --control-ca to fix it; FAULTLINE_CONTROL_CA is taken instead of the flag', async () => {
    const args = ['--control', control.url, '--token-file', join(dir, 'admin.token'), '--service', 'payments', '--name', 'payments-2', '--app', app.address, '--inbound', await freeAddress(), '--admin', await freeAddress(), '--state-dir', join(dir, 'sidecars', 'payments-2')];
    const started = Date.now();
    const refused = await startSidecarWith(args).then(() => 'started', (error: Error) => error.message);
    expect(refused).to.include('exited with 1');
    expect(refused).to.include(`FL_CONTROL_TLS: ${control.url}: the control plane's certificate does not verify`);
    expect(refused).to.include('--control-ca');
    expect(Date.now() - started, 'refused, not waited out (5 s) and started from a kept snapshot').to.be.below(5_000);
    const joined = await startSidecarWith(args, { FAULTLINE_CONTROL_CA: control.caFile! });
    children.push(joined.child);
    await waitFor(() => control.plane.instances().some((i) => i.name === 'payments-2'), 10_000, 'payments-2 to register');
  });

  it('says so when a client trusts another CA, or names the control plane by a name its certificate lacks', async () => {
    const other = (await MeshCa.create('other.test')).certPem;
    const wrongCa = await controlRequest(`${control.url}/config`, {}, other).catch((error: unknown) => error);
    expect(wrongCa).to.be.instanceOf(ControlTlsError);
    expect((wrongCa as Error).message).to.include('the --control-ca given is not the CA that signed it');
    const wrongName = await controlRequest(`${control.url.replace('127.0.0.1', 'localhost')}/config`, {}, ca).catch((error: unknown) => error);
    expect(wrongName).to.be.instanceOf(ControlTlsError);
    expect((wrongName as Error).message).to.match(/ERR_TLS_CERT_ALTNAME_INVALID.*--tls-san/);
  });

  it('answers plain http:// on its TLS port with a clear 400, and a client says to use https://', async () => {
    const plainUrl = control.url.replace('https:', 'http:');
    const raw = await send(hostPort(control.url), { path: '/config' });
    expect(raw.status).to.equal(400);
    expect(raw.json()).to.deep.equal({ error: 'this control plane serves HTTPS: use an https:// URL (and --control-ca with its CA)', code: 'FL_CONTROL_TLS' });
    const error = await controlRequest(`${plainUrl}/config`, {}).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ControlTlsError);
    expect((error as Error).message).to.equal(`${plainUrl} serves HTTPS, not plain HTTP: use ${control.url} (and --control-ca with its CA)`);
    // And the control plane still serves TLS after it.
    expect((await peer(hostPort(control.url), { ca })).authorized).to.equal(true);
  });

  it('says https:// to a plain control plane does not speak TLS', async () => {
    const plain = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'plain'), configFile: meshFile });
    try {
      expect(plain.url).to.match(/^http:/);
      const error = await controlRequest(`${plain.url.replace('http:', 'https:')}/config`, {}, ca).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(ControlTlsError);
      expect((error as Error).message).to.include(`does not speak TLS (ERR_SSL_WRONG_VERSION_NUMBER): if the control plane serves plain HTTP, use ${plain.url}`);
    } finally {
      await plain.close();
    }
  });

  it('renews its serving certificate before it ends, and goes on serving with the new one', async () => {
    const short = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'short'), configFile: meshFile, tls: { mode: 'auto', ttlMs: 3_000 } });
    try {
      const shortCa = await readFile(short.caFile!, 'utf8');
      const first = await peer(hostPort(short.url), { ca: shortCa });
      const renewed = await waitFor(async () => {
        const now = await peer(hostPort(short.url), { ca: shortCa });
        return now.cert.serialNumber !== first.cert.serialNumber && now;
      }, 10_000, 'a renewed serving certificate');
      expect(renewed.authorized).to.equal(true);
      expect(Date.parse(renewed.cert.valid_to)).to.be.above(Date.parse(first.cert.valid_to));
      const config = await new MeshClient(short.url, TOKEN, shortCa).snapshot();
      expect(config.version).to.equal(short.plane.state.version);
    } finally {
      await short.close();
    }
  });

  it('closes at once with a client\'s TLS connection open, and ends that connection', async () => {
    const closing = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'closing'), configFile: meshFile, tls: { mode: 'auto' } });
    const address = hostPort(closing.url);
    const colon = address.lastIndexOf(':');
    const idle = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), ca: await readFile(closing.caFile!, 'utf8') });
    await once(idle, 'secureConnect');
    const ended = once(idle, 'close');
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('close() still waits for the idle connection after 5 s')), 5_000).unref());
    await Promise.race([Promise.all([closing.close(), ended]), deadline]);
  });

  it('serves an operator\'s certificate and key files; refuses a pair that does not match, naming the flags', async () => {
    const operatorCa = await MeshCa.create('operator.test');
    const issued = await operatorCa.issueServer({ dnsNames: ['cp.operator.test'], ipAddresses: ['127.0.0.1'] }, 3_600_000);
    const other = await operatorCa.issueServer({ dnsNames: ['elsewhere.test'], ipAddresses: [] }, 3_600_000);
    const certFile = join(dir, 'server.pem');
    const keyFile = join(dir, 'server-key.pem');
    const otherKey = join(dir, 'other-key.pem');
    await writeFile(certFile, issued.certPem);
    await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
    await writeFile(otherKey, other.keyPem, { mode: 0o600 });
    const served = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'operator'), configFile: meshFile, tls: { mode: 'files', certFile, keyFile } });
    try {
      expect(served.caFile, 'no CA file: the operator has its CA').to.equal(undefined);
      const seen = await peer(hostPort(served.url), { ca: operatorCa.certPem });
      expect(seen.authorized).to.equal(true);
      expect(seen.cert.serialNumber).to.equal(new X509Certificate(issued.certPem).serialNumber);
      expect((await new MeshClient(served.url, TOKEN, operatorCa.certPem).snapshot()).version).to.equal(served.plane.state.version);
    } finally {
      await served.close();
    }
    const mismatch = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'mismatch'), configFile: meshFile, tls: { mode: 'files', certFile, keyFile: otherKey } }).catch((e: unknown) => e);
    expect((mismatch as Error).message).to.match(new RegExp(`^--tls-cert ${certFile} / --tls-key ${otherKey}: .*key values mismatch`));
  });

  it('with an operator\'s intermediate CA, serves the chain: a client trusting only the root verifies it', async () => {
    const pki = join(dir, 'pki');
    await mkdir(pki);
    const openssl = (...args: string[]) => {
      const done = spawnSync('openssl', args, { cwd: pki, encoding: 'utf8', timeout: 10_000 });
      expect(done.status, done.stderr).to.equal(0);
    };
    await writeFile(join(pki, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=operator root');
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'mid.key', '-out', 'mid.csr', '-subj', '/CN=operator intermediate');
    openssl('x509', '-req', '-in', 'mid.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'mid.pem', '-days', '1', '-extfile', 'ext.cnf');
    const chained = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'chained'), configFile: meshFile, ca: { certFile: join(pki, 'mid.pem'), keyFile: join(pki, 'mid.key') }, tls: { mode: 'auto' } });
    try {
      expect(await readFile(chained.caFile!, 'utf8'), 'the CA it signs with: the intermediate').to.equal(await readFile(join(pki, 'mid.pem'), 'utf8'));
      const root = await readFile(join(pki, 'root.pem'), 'utf8');
      expect((await peer(hostPort(chained.url), { ca: root })).authorized).to.equal(true);
      expect((await new MeshClient(chained.url, TOKEN, root).snapshot()).version).to.equal(chained.plane.state.version);
    } finally {
      await chained.close();
    }
  });

  it('takes an experiment\'s target.ca relative to the experiment file, and names the field when it holds no certificate', async () => {
    const experiments = join(dir, 'experiments');
    await mkdir(experiments);
    await writeFile(join(experiments, 'ca.pem'), ca);
    await writeFile(join(experiments, 'not-a-ca.pem'), 'nothing here\n');
    const file = join(experiments, 'gameday.yaml');
    const client = await targetClient({ control: control.url, tokenFile: '../admin.token', ca: 'ca.pem' }, file);
    expect((await client.snapshot()).version).to.equal(control.plane.state.version);
    const refused = await targetClient({ control: control.url, tokenFile: '../admin.token', ca: 'not-a-ca.pem' }, file).catch((e: unknown) => e);
    expect((refused as Error).message).to.equal(`${file}: target.ca ${join(experiments, 'not-a-ca.pem')}: no PEM certificate in it`);
  });

  it('as processes: faultline control --tls auto prints its CA file; stop and token create take --control-ca, and without it fail saying so', async () => {
    const child = spawn(process.execPath, [CLI, 'control', '--listen', await freeAddress(), '--token-file', join(dir, 'admin.token'), '--state-dir', join(dir, 'cli-control'), '--config', meshFile, '--tls', 'auto', '--tls-san', 'a.tls.test,b.tls.test', '--tls-san', 'c.tls.test'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' },
    });
    children.push(child);
    const { printed } = await firstLine(child, 'control');
    expect(printed.control).to.match(/^https:/);
    expect(printed.controlCa).to.equal(join(dir, 'cli-control', 'control-ca.pem'));
    expect(printed.caFingerprint).to.equal(new X509Certificate(await readFile(printed.controlCa!, 'utf8')).fingerprint256);
    expect((await peer(hostPort(printed.control!))).cert.subjectaltname).to.include('DNS:a.tls.test, DNS:b.tls.test, DNS:c.tls.test');
    const common = ['--control', printed.control!, '--token-file', join(dir, 'admin.token')];
    const stopped = await runCli(['stop', ...common, '--control-ca', printed.controlCa!]);
    expect(stopped.code, stopped.stderr).to.equal(0);
    expect(stopped.stdout).to.include('verified: no runtime fault is left');
    const made = await runCli(['token', 'create', ...common, '--control-ca', printed.controlCa!, '--service', 'payments']);
    expect(made.code, made.stderr).to.equal(0);
    expect(made.stdout.trim()).to.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const untrusted = await runCli(['stop', ...common], 15_000, { ...process.env, FAULTLINE_CONTROL_CA: '' });
    expect(untrusted.code).to.equal(1);
    expect(untrusted.stderr).to.include('the control plane\'s certificate does not verify').and.to.include('--control-ca');
    const bad = await runCli(['control', '--tls', 'auto', '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server-key.pem')]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--tls auto issues its own certificate');
  });
});
