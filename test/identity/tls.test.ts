// Workload certificates in real mutual TLS 1.3 on loopback: node:tls on both sides, then openssl
// s_client and curl as independent clients. The server requires and verifies a client certificate
// from the mesh CA; each side reads the other's SPIFFE ID from its certificate.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type PeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { MeshCa } from '../../src/identity/ca.ts';
import { spiffeIdOf } from '../../src/identity/spiffe.ts';
import { WorkloadKey, type WorkloadIdentity } from '../../src/identity/workload.ts';

const PAYMENTS = 'spiffe://mesh.local/ns/default/sa/payments';
const CHECKOUT = 'spiffe://mesh.local/ns/default/sa/checkout';

async function issue(ca: MeshCa, service: string): Promise<WorkloadIdentity> {
  const key = await WorkloadKey.generate();
  const signed = await ca.sign(await key.csr(service, `spiffe://${ca.trustDomain}/ns/default/sa/${service}`), service);
  return { keyPem: key.keyPem, certPem: signed.certPem, caPem: ca.certPem, spiffeId: signed.spiffeId, notAfter: signed.notAfter };
}

/** The server side of mesh mTLS: our certificate, and only peers with one from the mesh CA. */
function serverOptions(id: WorkloadIdentity) {
  return { key: id.keyPem, cert: id.certPem, ca: [id.caPem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' as const };
}

/** Workload certificates name no host: a client checks the server's SPIFFE ID instead. */
function expectPeer(spiffeId: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined =>
    spiffeIdOf(cert.subjectaltname) === spiffeId ? undefined : new Error(`server is ${spiffeIdOf(cert.subjectaltname)}, not ${spiffeId}`);
}

interface Seen {
  secure: { spiffeId: string | undefined; authorized: boolean }[];
  clientErrors: Error[];
}

function record(server: Server | HttpsServer, sockets: Set<TLSSocket>): Seen {
  const seen: Seen = { secure: [], clientErrors: [] };
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    seen.secure.push({ spiffeId: spiffeIdOf(socket.getPeerCertificate().subjectaltname), authorized: socket.authorized });
  });
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    seen.clientErrors.push(error);
    socket.destroy();
  });
  return seen;
}

async function listen(server: Server | HttpsServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server | HttpsServer, sockets: Set<TLSSocket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function waitFor(probe: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface ClientOutcome {
  /** The server's SPIFFE ID, if the handshake completed on the client's side. */
  serverId: string | undefined;
  data: string;
  error: Error | undefined;
}

/** Connects with node:tls (TLS 1.3), reads until the server closes, and tells what happened. */
function dial(port: number, options: { key?: string; cert?: string; ca: string; expect: string }): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const outcome: ClientOutcome = { serverId: undefined, data: '', error: undefined };
    const socket = connect({
      host: '127.0.0.1',
      port,
      key: options.key,
      cert: options.cert,
      ca: [options.ca],
      minVersion: 'TLSv1.3',
      checkServerIdentity: expectPeer(options.expect),
    });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      expect(socket.getProtocol()).to.equal('TLSv1.3');
      outcome.serverId = spiffeIdOf(socket.getPeerCertificate().subjectaltname);
    });
    socket.on('data', (chunk: string) => (outcome.data += chunk));
    socket.on('error', (error) => (outcome.error ??= error));
    socket.on('close', () => resolve(outcome));
    socket.setTimeout(5_000, () => socket.destroy(new Error('client timed out')));
  });
}

interface Finished {
  code: number | null;
  output: string;
}

/** Runs a command with stdin closed and a deadline; never throws for a nonzero exit. */
function run(command: string, args: string[], timeoutMs = 5_000): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('identity: mutual TLS with workload certificates', function () {
  this.slow(3_000);
  let ca: MeshCa;
  let payments: WorkloadIdentity;
  let checkout: WorkloadIdentity;
  let stranger: WorkloadIdentity;
  let dir: string;
  const files = { ca: '', cert: '', key: '', strangerCert: '', strangerKey: '' };

  before(async () => {
    ca = await MeshCa.create('mesh.local');
    payments = await issue(ca, 'payments');
    checkout = await issue(ca, 'checkout');
    // Same trust domain and service name, but from another CA: the name alone must not be enough.
    stranger = await issue(await MeshCa.create('mesh.local'), 'checkout');
    dir = await mkdtemp(join(tmpdir(), 'faultline-tls-'));
    files.ca = join(dir, 'ca.pem');
    files.cert = join(dir, 'cert.pem');
    files.key = join(dir, 'key.pem');
    files.strangerCert = join(dir, 'stranger-cert.pem');
    files.strangerKey = join(dir, 'stranger-key.pem');
    await writeFile(files.ca, ca.certPem);
    await writeFile(files.cert, checkout.certPem);
    await writeFile(files.key, checkout.keyPem, { mode: 0o600 });
    await writeFile(files.strangerCert, stranger.certPem);
    await writeFile(files.strangerKey, stranger.keyPem, { mode: 0o600 });
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('node:tls', () => {
    let server: Server;
    let port: number;
    let seen: Seen;
    const sockets = new Set<TLSSocket>();

    beforeEach(async () => {
      server = createServer(serverOptions(payments), (socket) => socket.end(`hello ${spiffeIdOf(socket.getPeerCertificate().subjectaltname)}\n`));
      seen = record(server, sockets);
      port = await listen(server);
    });

    afterEach(async () => {
      await close(server, sockets);
    });

    it('connects two workloads, each seeing the other’s SPIFFE ID', async () => {
      const outcome = await dial(port, { key: checkout.keyPem, cert: checkout.certPem, ca: checkout.caPem, expect: PAYMENTS });
      expect(outcome.error).to.equal(undefined);
      expect(outcome.serverId).to.equal(PAYMENTS);
      expect(outcome.data).to.equal(`hello ${CHECKOUT}\n`);
      expect(seen.secure).to.deep.equal([{ spiffeId: CHECKOUT, authorized: true }]);
      expect(seen.clientErrors).to.deep.equal([]);
    });

    it('refuses a client without a certificate', async () => {
      const outcome = await dial(port, { ca: checkout.caPem, expect: PAYMENTS });
      await waitFor(() => seen.clientErrors.length > 0, 'the server to refuse the handshake');
      expect(outcome.data).to.equal('');
      expect(outcome.error?.message).to.match(/certificate required/);
      expect(seen.secure).to.deep.equal([]);
      expect(seen.clientErrors[0]!.message).to.match(/peer did not return a certificate/);
    });

    it('refuses a client whose certificate comes from another CA', async () => {
      // OpenSSL completes the handshake on the client's side first (TLS 1.3), then Node, finding the
      // client's chain unverifiable, drops the connection before the application sees it.
      const outcome = await dial(port, { key: stranger.keyPem, cert: stranger.certPem, ca: checkout.caPem, expect: PAYMENTS });
      await waitFor(() => seen.clientErrors.length > 0, 'the server to refuse the handshake');
      expect(outcome.data).to.equal('');
      expect(seen.secure).to.deep.equal([]);

      // Why: a server that lets unverified clients in says so (the stranger even bears checkout's name).
      const lenient = createServer({ ...serverOptions(payments), rejectUnauthorized: false }, (socket) =>
        socket.end(`${socket.authorized} ${socket.authorizationError} ${spiffeIdOf(socket.getPeerCertificate().subjectaltname)}\n`),
      );
      const lenientSockets = new Set<TLSSocket>();
      record(lenient, lenientSockets);
      const told = await dial(await listen(lenient), { key: stranger.keyPem, cert: stranger.certPem, ca: checkout.caPem, expect: PAYMENTS });
      await close(lenient, lenientSockets);
      // The other CA has the same name as ours (same trust domain), so OpenSSL finds ours and its key fails.
      expect(told.data).to.equal(`false UNABLE_TO_VERIFY_LEAF_SIGNATURE ${CHECKOUT}\n`);
    });

    it('lets a client refuse a server that is not the service it called', async () => {
      const outcome = await dial(port, { key: checkout.keyPem, cert: checkout.certPem, ca: checkout.caPem, expect: 'spiffe://mesh.local/ns/default/sa/ledger' });
      expect(outcome.error?.message).to.equal(`server is ${PAYMENTS}, not spiffe://mesh.local/ns/default/sa/ledger`);
      expect(outcome.data).to.equal('');
    });
  });

  describe('openssl s_client', () => {
    let server: Server;
    let port: number;
    let seen: Seen;
    const sockets = new Set<TLSSocket>();

    beforeEach(async () => {
      server = createServer(serverOptions(payments), (socket) => socket.end('hello\n'));
      seen = record(server, sockets);
      port = await listen(server);
    });

    afterEach(async () => {
      await close(server, sockets);
    });

    // -ign_eof: s_client waits for the server to close (on an alert, or after its greeting) instead of
    // quitting at once on its closed stdin; -verify_return_error: it checks the server chains to ca.pem.
    const sClient = (extra: string[]) =>
      run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', files.ca, '-verify_return_error', '-ign_eof', ...extra]);

    it('is refused without a client certificate', async () => {
      const result = await sClient([]);
      await waitFor(() => seen.clientErrors.length > 0, 'the server to refuse the handshake');
      expect(seen.secure).to.deep.equal([]);
      expect(result.output).to.match(/alert certificate required|alert number 116/);
      expect(result.output).to.not.include('hello');
    });

    it('is refused with a certificate from another CA', async () => {
      const result = await sClient(['-cert', files.strangerCert, '-key', files.strangerKey]);
      await waitFor(() => seen.clientErrors.length > 0, 'the server to refuse the handshake');
      expect(seen.secure).to.deep.equal([]);
      expect(result.code).to.not.equal(0);
      expect(result.output).to.not.include('hello');
    });

    it('connects with a workload certificate, and verifies the server against the CA', async () => {
      const result = await sClient(['-cert', files.cert, '-key', files.key]);
      expect(seen.secure).to.deep.equal([{ spiffeId: CHECKOUT, authorized: true }]);
      expect(result.output).to.include('\nhello\n');
      expect(result.output).to.match(/Verify return code: 0 \(ok\)/);
      expect(result.output).to.not.match(/alert/);
      expect(result.output).to.match(/Protocol\s*: TLSv1\.3/);
    });
  });

  describe('curl against node:https', () => {
    let server: HttpsServer;
    let port: number;
    let seen: Seen;
    const sockets = new Set<TLSSocket>();
    /** curl checks a host name against the certificate, which names none: -k, but with the server's key pinned. */
    let pin: string;

    before(() => {
      const spki = new X509Certificate(payments.certPem).publicKey.export({ type: 'spki', format: 'der' });
      pin = `sha256//${createHash('sha256').update(spki).digest('base64')}`;
    });

    beforeEach(async () => {
      server = createHttpsServer(serverOptions(payments), (req, res) => {
        const socket = req.socket as TLSSocket;
        res.end(`${socket.authorized} ${spiffeIdOf(socket.getPeerCertificate().subjectaltname)}`);
      });
      seen = record(server, sockets);
      port = await listen(server);
    });

    afterEach(async () => {
      await close(server, sockets);
    });

    const curl = (extra: string[]) =>
      run('curl', ['-sS', '-k', '--tlsv1.3', '--pinnedpubkey', pin, '--max-time', '5', '-w', '\n%{http_code}', ...extra, `https://127.0.0.1:${port}/`]);

    it('gets 200 with a workload certificate, which the server verified', async () => {
      const result = await curl(['--cert', files.cert, '--key', files.key]);
      expect(result.code).to.equal(0);
      expect(result.output).to.equal(`true ${CHECKOUT}\n200`);
      expect(seen.secure).to.deep.equal([{ spiffeId: CHECKOUT, authorized: true }]);
    });

    it('fails without a client certificate', async () => {
      const result = await curl([]);
      expect(result.code).to.not.equal(0);
      await waitFor(() => seen.clientErrors.length > 0, 'the server to refuse the handshake');
      expect(seen.secure).to.deep.equal([]);
      expect(result.output).to.not.match(/200$/);
    });

    it('fails when the server is not the pinned key', async () => {
      const other = new X509Certificate(checkout.certPem).publicKey.export({ type: 'spki', format: 'der' });
      const wrongPin = `sha256//${createHash('sha256').update(other).digest('base64')}`;
      const result = await run('curl', ['-sS', '-k', '--tlsv1.3', '--pinnedpubkey', wrongPin, '--max-time', '5', '--cert', files.cert, '--key', files.key, `https://127.0.0.1:${port}/`]);
      expect(result.code).to.equal(90); // CURLE_SSL_PINNEDPUBKEYNOTMATCH
    });
  });
});
