// The mesh CA and workload keys with real crypto: what a root and a workload certificate contain, that
// the CA alone decides identity, which CSRs and CA materials are refused, key files, renewal, SPIFFE IDs.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadX509, MeshCa } from '../../src/identity/ca.ts';
import { parseSpiffeId, spiffeId, spiffeIdOf } from '../../src/identity/spiffe.ts';
import { renewAt, WorkloadKey } from '../../src/identity/workload.ts';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** A CSR for a key the CA must refuse, made with WebCrypto and @peculiar/x509. */
async function foreignCsr(algorithm: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams, signing: webcrypto.Algorithm | webcrypto.EcdsaParams): Promise<string> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: ['payments'] }], keys, signingAlgorithm: signing }, webcrypto);
  return csr.toString('pem');
}

/** A CSR from a fresh workload key, asking for the ID the CA would give it. */
async function csrFor(service: string): Promise<string> {
  return (await WorkloadKey.generate()).csr(service, `spiffe://mesh.local/ns/default/sa/${service}`);
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

describe('identity: mesh CA', () => {
  let ca: MeshCa;
  let caCert: X509Certificate;
  let dir: string;

  before(async () => {
    ca = await MeshCa.create('mesh.local');
    caCert = new X509Certificate(ca.certPem);
    dir = await mkdtemp(join(tmpdir(), 'faultline-ca-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a self-signed ECDSA P-256 root for the trust domain, valid 10 years', () => {
    expect(caCert.ca).to.equal(true);
    expect(caCert.publicKey.asymmetricKeyType).to.equal('ec');
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    expect(caCert.subject).to.equal('CN=faultline mesh CA mesh.local');
    expect(caCert.checkIssued(caCert)).to.equal(true);
    expect(caCert.verify(caCert.publicKey)).to.equal(true);
    const years = (Date.parse(caCert.validTo) - Date.now()) / (365.25 * 86_400_000);
    expect(years).to.be.within(9.9, 10.1);
    expect(ca.trustDomain).to.equal('mesh.local');
    expect(ca.material().certPem).to.equal(ca.certPem);
    expect(createPublicKey(ca.material().keyPem).equals(caCert.publicKey)).to.equal(true);
  });

  it('signs a workload CSR into a SPIFFE certificate that chains to the CA', async () => {
    const key = await WorkloadKey.generate();
    const csr = await key.csr('payments', 'spiffe://mesh.local/ns/default/sa/payments');
    const before = Date.now();
    const signed = await ca.sign(csr, 'payments', { ttlMs: 30 * 60_000 });
    const cert = new X509Certificate(signed.certPem);

    expect(signed.spiffeId).to.equal('spiffe://mesh.local/ns/default/sa/payments');
    expect(cert.verify(caCert.publicKey)).to.equal(true);
    expect(cert.checkIssued(caCert)).to.equal(true);
    expect(cert.subjectAltName).to.equal('URI:spiffe://mesh.local/ns/default/sa/payments');
    expect(cert.subject).to.equal('CN=payments');
    expect(cert.ca).to.equal(false);
    expect(cert.keyUsage).to.include.members([SERVER_AUTH, CLIENT_AUTH]);
    expect(cert.publicKey.equals(createPublicKey(key.keyPem))).to.equal(true);
    expect(cert.serialNumber).to.have.length(32);
    // Valid from a minute ago (clock skew) for the ttl; X.509 times have whole seconds.
    expect(Date.parse(cert.validFrom)).to.be.within(before - 61_000, before - 59_000);
    expect(Date.parse(cert.validTo)).to.be.within(before + 30 * 60_000 - 1_000, Date.now() + 30 * 60_000);
    expect(signed.notAfter.getTime()).to.equal(Date.parse(cert.validTo));

    const other = await ca.sign(csr, 'payments', { namespace: 'shop' });
    expect(new X509Certificate(other.certPem).subjectAltName).to.equal('URI:spiffe://mesh.local/ns/shop/sa/payments');
    expect(new X509Certificate(other.certPem).serialNumber).to.not.equal(cert.serialNumber);
    expect(Date.parse(new X509Certificate(other.certPem).validTo) - before).to.be.within(3_599_000, 3_605_000);
  });

  it('issues the service identity whatever SPIFFE ID the CSR asks for', async () => {
    const key = await WorkloadKey.generate();
    const csr = await key.csr('payments', 'spiffe://mesh.local/ns/kube-system/sa/admin');
    const signed = await ca.sign(csr, 'payments');
    expect(signed.spiffeId).to.equal('spiffe://mesh.local/ns/default/sa/payments');
    expect(new X509Certificate(signed.certPem).subjectAltName).to.equal('URI:spiffe://mesh.local/ns/default/sa/payments');
  });

  it('refuses a CSR changed anywhere: any DER byte, any base64 character', async () => {
    const csr = await csrFor('payments');
    await ca.sign(csr, 'payments');
    const body = csr.replace(/-----[A-Z ]+-----|\s/g, '');
    const der = Buffer.from(body, 'base64');
    const pem = (base64: string) => `-----BEGIN CERTIFICATE REQUEST-----\n${base64.replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const accepted: string[] = [];
    const attempt = async (what: string, changed: string) => {
      try {
        await ca.sign(changed, 'payments');
        accepted.push(what);
      } catch (error) {
        expect((error as Error).message, what).to.match(/^invalid CSR: /);
      }
    };
    for (let i = 0; i < der.length; i++) {
      const flipped = Buffer.from(der);
      flipped[i]! ^= 0x01;
      await attempt(`DER byte ${i}`, pem(flipped.toString('base64')));
    }
    for (let i = 0; i < body.length && body[i] !== '='; i++) {
      await attempt(`base64 character ${i}`, pem(body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1)));
    }
    expect(accepted).to.deep.equal([]);
    expect((await rejection(ca.sign('not a csr', 'payments'))).message).to.match(/^invalid CSR: expected exactly one PEM/);
    expect((await rejection(ca.sign(csr + csr, 'payments'))).message).to.match(/^invalid CSR: expected exactly one PEM/);
  });

  it('accepts a CSR made by openssl for a P-256 key', async () => {
    const dir2 = await mkdtemp(join(dir, 'openssl-'));
    const keyFile = join(dir2, 'key.pem');
    await writeFile(keyFile, (await WorkloadKey.generate()).keyPem, { mode: 0o600 });
    const csr = run('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=whatever', '-sha256']);
    const signed = await ca.sign(csr, 'payments');
    expect(new X509Certificate(signed.certPem).subjectAltName).to.equal('URI:spiffe://mesh.local/ns/default/sa/payments');
    expect(new X509Certificate(signed.certPem).subject).to.equal('CN=payments');

    // And openssl agrees that the certificate chains to the CA, for either TLS role.
    await writeFile(join(dir2, 'ca.pem'), ca.certPem);
    await writeFile(join(dir2, 'cert.pem'), signed.certPem);
    for (const purpose of ['sslserver', 'sslclient']) {
      expect(run('openssl', ['verify', '-purpose', purpose, '-CAfile', join(dir2, 'ca.pem'), join(dir2, 'cert.pem')])).to.match(/: OK$/m);
    }
    const text = run('openssl', ['x509', '-noout', '-text', '-in', join(dir2, 'cert.pem')]);
    expect(text).to.match(/CA:FALSE/).and.match(/Digital Signature/).and.match(/TLS Web Server Authentication, TLS Web Client Authentication/);
  });

  it('issues the control plane its serving certificate: its names and addresses only, serverAuth only, and openssl verifies it as a server', async () => {
    const issued = await ca.issueServer({ dnsNames: ['cp1.example'], ipAddresses: ['127.0.0.1', '10.213.0.1'] }, 3_600_000);
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).to.equal('DNS:cp1.example, IP Address:127.0.0.1, IP Address:10.213.0.1');
    expect(cert.ca).to.equal(false);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).to.equal(true);
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).to.equal(true);
    expect(issued.notAfter.getTime() - Date.now()).to.be.within(3_500_000, 3_600_000);
    const dir2 = await mkdtemp(join(dir, 'server-'));
    await writeFile(join(dir2, 'ca.pem'), ca.certPem);
    await writeFile(join(dir2, 'cert.pem'), issued.certPem);
    expect(run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir2, 'ca.pem'), join(dir2, 'cert.pem')])).to.match(/: OK$/m);
    const text = run('openssl', ['x509', '-noout', '-text', '-in', join(dir2, 'cert.pem')]);
    expect(text).to.match(/CA:FALSE/).and.match(/TLS Web Server Authentication\n/).and.not.match(/Client Authentication|spiffe:/);
    expect((await rejection(ca.issueServer({ dnsNames: [], ipAddresses: [] }, 1_000))).message).to.match(/at least one name/);
  });

  it('refuses CSRs for RSA and P-384 keys', async () => {
    const rsa = await foreignCsr({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' });
    expect((await rejection(ca.sign(rsa, 'payments'))).message).to.match(/must be ECDSA P-256, got rsa/);
    const p384 = await foreignCsr({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' } as webcrypto.EcdsaParams);
    expect((await rejection(ca.sign(p384, 'payments'))).message).to.match(/must be ECDSA P-256, got ec secp384r1/);
  });

  it('refuses names that cannot be part of a SPIFFE ID', async () => {
    const csr = await csrFor('payments');
    expect((await rejection(ca.sign(csr, 'pay/ments'))).message).to.match(/invalid service name/);
    expect((await rejection(ca.sign(csr, 'payments', { namespace: '..' }))).message).to.match(/invalid namespace/);
    expect((await rejection(MeshCa.create('Mesh Local'))).message).to.match(/invalid SPIFFE trust domain/);
  });

  it('loads its own material back, and the loaded CA signs certificates the original trusts', async () => {
    const loaded = await MeshCa.load(ca.material(), 'mesh.local');
    expect(loaded.material()).to.deep.equal(ca.material());
    const csr = await csrFor('checkout');
    const cert = new X509Certificate((await loaded.sign(csr, 'checkout')).certPem);
    expect(cert.verify(caCert.publicKey)).to.equal(true);
    expect(cert.checkIssued(caCert)).to.equal(true);
  });

  it('refuses a CA key that does not match, and a certificate that is not a CA', async () => {
    const other = await MeshCa.create('mesh.local');
    const mismatched = { certPem: ca.certPem, keyPem: other.material().keyPem };
    expect((await rejection(MeshCa.load(mismatched, 'mesh.local'))).message).to.match(/does not match/);

    const workload = await WorkloadKey.generate();
    const leaf = await ca.sign(await workload.csr('payments', 'spiffe://mesh.local/ns/default/sa/payments'), 'payments');
    const notCa = { certPem: leaf.certPem, keyPem: workload.keyPem };
    expect((await rejection(MeshCa.load(notCa, 'mesh.local'))).message).to.match(/is not a CA/);
    expect((await rejection(MeshCa.load({ certPem: 'junk', keyPem: workload.keyPem }, 'mesh.local'))).message).to.match(/exactly one certificate/);
  });

  it('loads an operator RSA root (PKCS#1 key) and signs with it', async () => {
    const x509 = await loadX509();
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const root = await x509.X509CertificateGenerator.createSelfSigned(
      { name: 'CN=Operator Root', keys, signingAlgorithm: algorithm, extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] },
      webcrypto,
    );
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const pkcs1 = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs1', format: 'pem' }) as string;
    const operator = await MeshCa.load({ certPem: root.toString('pem'), keyPem: pkcs1 }, 'corp.example');
    const signed = await operator.sign(await csrFor('payments'), 'payments');
    const cert = new X509Certificate(signed.certPem);
    expect(cert.verify(new X509Certificate(operator.certPem).publicKey)).to.equal(true);
    expect(cert.checkIssued(new X509Certificate(operator.certPem))).to.equal(true);
    expect(cert.subjectAltName).to.equal('URI:spiffe://corp.example/ns/default/sa/payments');
    expect(operator.material().keyPem).to.match(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('saves a workload key owner-only and loads it back', async () => {
    const keys = await mkdtemp(join(dir, 'keys-'));
    const key = await WorkloadKey.generate();
    const file = join(keys, 'workload.key');
    await writeFile(file, 'old contents', { mode: 0o644 });
    await key.save(file);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(await readFile(file, 'utf8')).to.equal(key.keyPem);
    const loaded = await WorkloadKey.load(file);
    expect(createPublicKey(loaded.keyPem).equals(createPublicKey(key.keyPem))).to.equal(true);
    expect(await readdir(keys)).to.deep.equal(['workload.key']);

    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(join(keys, 'p384.key'), p384);
    // A sidecar's state directory may not exist yet when its first key is saved (its first config is stored concurrently).
    const fresh = join(keys, 'sidecars', 'front', 'key.pem');
    await key.save(fresh);
    expect((await stat(dirname(fresh))).mode & 0o777).to.equal(0o700);
    expect(await readFile(fresh, 'utf8')).to.equal(key.keyPem);
    expect((await rejection(WorkloadKey.load(join(keys, 'p384.key')))).message).to.match(/not ECDSA P-256/);
  });

  it('renews at two thirds of the lifetime', async () => {
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const notAfter = new Date('2030-01-01T03:00:00Z');
    expect(renewAt({ notBefore, notAfter }).toISOString()).to.equal('2030-01-01T02:00:00.000Z');
    const cert = new X509Certificate((await ca.sign(await csrFor('payments'), 'payments')).certPem);
    const at = renewAt({ notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) }).getTime();
    expect(at).to.equal(Date.parse(cert.validFrom) + (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) * (2 / 3));
  });
});

describe('identity: SPIFFE IDs', () => {
  it('formats and parses workload IDs', () => {
    const id = spiffeId('mesh.local', 'default', 'payments');
    expect(id).to.equal('spiffe://mesh.local/ns/default/sa/payments');
    expect(parseSpiffeId(id)).to.deep.equal({ trustDomain: 'mesh.local', namespace: 'default', service: 'payments' });
    for (const bad of ['spiffe://mesh.local/ns/default/sa', 'spiffe://mesh.local/ns/default/sa/a/b', 'spiffe://Mesh/ns/a/sa/b', 'https://mesh.local/ns/a/sa/b', 'spiffe://mesh.local/ns/../sa/b', 'spiffe://mesh.local/x/a/sa/b']) {
      expect(parseSpiffeId(bad), bad).to.equal(undefined);
    }
    expect(() => spiffeId('mesh.local', 'a/b', 'c')).to.throw(/invalid namespace/);
  });

  it('reads the one SPIFFE ID from a subjectAltName string', () => {
    expect(spiffeIdOf('URI:spiffe://a/ns/b/sa/c')).to.equal('spiffe://a/ns/b/sa/c');
    expect(spiffeIdOf('DNS:x, URI:spiffe://a/ns/b/sa/c')).to.equal('spiffe://a/ns/b/sa/c');
    expect(spiffeIdOf('URI:spiffe://a/ns/b/sa/c, URI:spiffe://a/ns/b/sa/d')).to.equal(undefined);
    expect(spiffeIdOf('DNS:x')).to.equal(undefined);
    expect(spiffeIdOf('URI:https://a/b')).to.equal(undefined);
    expect(spiffeIdOf(undefined)).to.equal(undefined);
    // Node quotes a value holding a separator, so one crafted name cannot pose as two entries.
    expect(spiffeIdOf('URI:"spiffe://a/ns/b/sa/c\\u002c URI:spiffe://x/y"')).to.equal(undefined);
  });
});
