// The mesh's certificate authority: a root (made here, or the operator's) that signs workloads' CSRs
// into short-lived X.509 SVIDs. The CA alone decides a workload's identity: whatever a CSR asks for,
// the certificate's only SAN is the URI SAN spiffe://<trust domain>/ns/<namespace>/sa/<service>.
import { createPrivateKey, randomBytes, webcrypto, X509Certificate as NodeCertificate, type KeyObject } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { checkCsr, describeKey } from './csr.ts';
import { isPathSegment, isTrustDomain, spiffeId } from './spiffe.ts';

export interface CaMaterial {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

export interface SignedWorkload {
  readonly certPem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

const DAY_MS = 86_400_000;
/** Allowance for clocks behind ours: certificates are valid from a minute ago. */
const CLOCK_SKEW_MS = 60_000;
const DEFAULT_CA_VALIDITY_DAYS = 3650;
const DEFAULT_WORKLOAD_TTL_MS = 3_600_000;

/** How a CA key of each supported type is imported into WebCrypto and signs. */
interface SigningScheme {
  readonly importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  readonly signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
}

export class MeshCa {
  readonly trustDomain: string;
  /** The CA certificate, PEM: the trust bundle sidecars get. */
  readonly certPem: string;
  readonly #keyPem: string;
  readonly #cert: X509.X509Certificate;
  readonly #signingKey: webcrypto.CryptoKey;
  readonly #scheme: SigningScheme;

  private constructor(trustDomain: string, certPem: string, keyPem: string, cert: X509.X509Certificate, signingKey: webcrypto.CryptoKey, scheme: SigningScheme) {
    this.trustDomain = trustDomain;
    this.certPem = certPem;
    this.#keyPem = keyPem;
    this.#cert = cert;
    this.#signingKey = signingKey;
    this.#scheme = scheme;
  }

  /** A new self-signed root: ECDSA P-256, CA:true, keyCertSign, 10 years by default, CN=faultline mesh CA <trustDomain>. */
  static async create(trustDomain: string, options: { validityDays?: number } = {}): Promise<MeshCa> {
    checkTrustDomain(trustDomain);
    const validityDays = options.validityDays ?? DEFAULT_CA_VALIDITY_DAYS;
    if (!(validityDays > 0) || !Number.isFinite(validityDays)) throw new Error(`CA validityDays must be a positive number, got ${validityDays}`);
    const x509 = await loadX509();
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: randomSerial(),
        name: [{ CN: [`faultline mesh CA ${trustDomain}`] }],
        notBefore: new Date(now - CLOCK_SKEW_MS),
        notAfter: new Date(now + validityDays * DAY_MS),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        keys,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        ],
      },
      webcrypto,
    );
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    const keyPem = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    return new MeshCa(trustDomain, cert.toString('pem') + '\n', keyPem, cert, keys.privateKey, P256);
  }

  /**
   * An operator-provided root (or intermediate) certificate and key, PEM. The key may be ECDSA P-256 or
   * P-384, or RSA; PKCS#8, SEC1 or PKCS#1. Throws if the key does not match the certificate, the
   * certificate is not a CA (basicConstraints CA:true, keyCertSign if key usage is restricted), or it expired.
   */
  static async load(material: CaMaterial, trustDomain: string): Promise<MeshCa> {
    checkTrustDomain(trustDomain);
    const certCount = material.certPem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
    if (certCount !== 1) throw new Error(`CA certificate PEM must hold exactly one certificate, found ${certCount}`);
    let nodeCert: NodeCertificate;
    try {
      nodeCert = new NodeCertificate(material.certPem);
    } catch (error) {
      throw new Error(`CA certificate is not a valid PEM certificate: ${message(error)}`, { cause: error });
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(material.keyPem);
    } catch (error) {
      throw new Error(`CA key is not a valid unencrypted PEM private key: ${message(error)}`, { cause: error });
    }
    if (!nodeCert.ca) throw new Error(`certificate "${nodeCert.subject}" is not a CA (basicConstraints CA:true missing)`);
    if (!nodeCert.checkPrivateKey(key)) throw new Error(`CA key does not match the CA certificate "${nodeCert.subject}"`);
    if (new Date(nodeCert.validTo).getTime() <= Date.now()) throw new Error(`CA certificate "${nodeCert.subject}" expired on ${nodeCert.validTo}`);
    const scheme = schemeFor(key);
    if (!scheme) throw new Error(`unsupported CA key type ${describeKey(key)} (ECDSA P-256/P-384 or RSA)`);
    const x509 = await loadX509();
    const cert = new x509.X509Certificate(nodeCert.raw);
    const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
    if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw new Error(`CA certificate "${nodeCert.subject}" may not sign certificates (keyUsage lacks keyCertSign)`);
    }
    const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    const signingKey = await webcrypto.subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), scheme.importParams, false, ['sign']);
    return new MeshCa(trustDomain, nodeCert.toString(), keyPem, cert, signingKey, scheme);
  }

  /** The certificate and key, to persist them. */
  material(): CaMaterial {
    return { certPem: this.certPem, keyPem: this.#keyPem };
  }

  /**
   * Signs a workload's CSR (PEM, PKCS#10) for `service` in `namespace` (default 'default'): checks the
   * CSR's own signature and that its key is ECDSA P-256, then issues a certificate whose only SAN is the
   * service's SPIFFE ID (whatever the CSR asked for): CN=<service>, CA:false, digitalSignature,
   * serverAuth+clientAuth, random 16-byte serial, valid from a minute ago for `ttlMs` (default 1 h;
   * never past the CA's own expiry).
   */
  async sign(csrPem: string, service: string, options: { namespace?: string; ttlMs?: number } = {}): Promise<SignedWorkload> {
    const namespace = options.namespace ?? 'default';
    const ttlMs = options.ttlMs ?? DEFAULT_WORKLOAD_TTL_MS;
    if (!isPathSegment(service)) throw new Error(`invalid service name "${service}" (letters, digits, ".", "-", "_")`);
    if (!isPathSegment(namespace)) throw new Error(`invalid namespace "${namespace}" (letters, digits, ".", "-", "_")`);
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new Error(`certificate ttlMs must be a positive number, got ${ttlMs}`);
    const id = spiffeId(this.trustDomain, namespace, service);
    const x509 = await loadX509();
    const csr = await checkCsr(x509, csrPem);

    const now = Date.now();
    const notAfter = new Date(Math.min(now + ttlMs, this.#cert.notAfter.getTime()));
    const extensions: X509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], false),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey, false, webcrypto),
    ];
    // The issuer's own key id, so that chain builders match it (a recomputed one may differ for an operator's CA).
    const issuerKeyId = this.#cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    if (issuerKeyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerKeyId, false));

    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject: [{ CN: [service] }],
        issuer: this.#cert.subjectName,
        notBefore: new Date(now - CLOCK_SKEW_MS),
        notAfter,
        publicKey: csr.publicKey,
        signingKey: this.#signingKey,
        signingAlgorithm: this.#scheme.signingAlgorithm,
        extensions,
      },
      webcrypto,
    );
    return { certPem: cert.toString('pem') + '\n', spiffeId: id, notAfter: cert.notAfter };
  }

  /**
   * A TLS server certificate for the control plane's own API, with a new ECDSA P-256 key made here:
   * SANs `dnsNames` and `ipAddresses` (no SPIFFE ID: it is no workload), serverAuth only, valid from a
   * minute ago for `ttlMs` (never past the CA's own expiry).
   */
  async issueServer(names: { dnsNames: readonly string[]; ipAddresses: readonly string[] }, ttlMs: number): Promise<CaMaterial & { notAfter: Date }> {
    if (names.dnsNames.length + names.ipAddresses.length === 0) throw new Error('a server certificate needs at least one name or address');
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new Error(`certificate ttlMs must be a positive number, got ${ttlMs}`);
    const x509 = await loadX509();
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const now = Date.now();
    const extensions: X509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([...names.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value }))], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
    ];
    const issuerKeyId = this.#cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    if (issuerKeyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerKeyId, false));
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject: [{ CN: [`faultline control plane ${names.dnsNames[0] ?? names.ipAddresses[0]}`] }],
        issuer: this.#cert.subjectName,
        notBefore: new Date(now - CLOCK_SKEW_MS),
        notAfter: new Date(Math.min(now + ttlMs, this.#cert.notAfter.getTime())),
        publicKey: keys.publicKey,
        signingKey: this.#signingKey,
        signingAlgorithm: this.#scheme.signingAlgorithm,
        extensions,
      },
      webcrypto,
    );
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    const keyPem = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    return { certPem: cert.toString('pem') + '\n', keyPem, notAfter: cert.notAfter };
  }
}

const P256: SigningScheme = { importParams: { name: 'ECDSA', namedCurve: 'P-256' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } };

function schemeFor(key: KeyObject): SigningScheme | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return P256;
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') {
    return { importParams: { name: 'ECDSA', namedCurve: 'P-384' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  return undefined;
}


/** 16 random bytes, a positive DER INTEGER of exactly that length (top bit clear, next bit set). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function checkTrustDomain(trustDomain: string): void {
  if (!isTrustDomain(trustDomain)) throw new Error(`invalid SPIFFE trust domain "${trustDomain}" (lowercase letters, digits, ".", "-", "_")`);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export type X509Module = typeof X509;

let x509Module: Promise<X509Module> | undefined;

/**
 * @peculiar/x509, loaded on first use, after reflect-metadata: its dependency tsyringe refuses to load
 * without that polyfill.
 */
export function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    return await import('@peculiar/x509');
  })();
  return x509Module;
}
