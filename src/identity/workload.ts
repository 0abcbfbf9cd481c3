// The sidecar's side of its identity: an ECDSA P-256 key that never leaves it (saved owner-only), the
// CSR it sends to the mesh CA, what it then serves and trusts over TLS, and when to renew.
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic-write.ts';
import { loadX509 } from './ca.ts';
import { isPathSegment, isSpiffeId } from './spiffe.ts';

/** What a sidecar serves and trusts: its key, its certificate chain and the CA bundle, as node:tls options. */
export interface WorkloadIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export class WorkloadKey {
  /** The private key, PKCS#8 PEM (for node:tls `key`). */
  readonly keyPem: string;
  readonly #key: KeyObject;

  private constructor(key: KeyObject) {
    this.#key = key;
    this.keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  }

  /** A fresh ECDSA P-256 key pair. */
  static async generate(): Promise<WorkloadKey> {
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    return new WorkloadKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }));
  }

  /** Reads a key written by save (or any unencrypted ECDSA P-256 private key PEM). */
  static async load(file: string): Promise<WorkloadKey> {
    const pem = await readFile(file, 'utf8');
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (error) {
      throw new Error(`${file} does not hold an unencrypted PEM private key: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error(`${file} holds a ${key.asymmetricKeyType} key, not ECDSA P-256`);
    }
    return new WorkloadKey(key);
  }

  /** PKCS#10 CSR PEM for `service`, signed by this key: CN=<service>, requesting the URI SAN `spiffeId`. */
  async csr(service: string, spiffeId: string): Promise<string> {
    if (!isPathSegment(service)) throw new Error(`invalid service name "${service}" (letters, digits, ".", "-", "_")`);
    if (!isSpiffeId(spiffeId)) throw new Error(`invalid SPIFFE ID "${spiffeId}"`);
    const x509 = await loadX509();
    const privateKey = await webcrypto.subtle.importKey('pkcs8', this.#key.export({ type: 'pkcs8', format: 'der' }), EC_P256, false, ['sign']);
    const spki = createPublicKey(this.#key).export({ type: 'spki', format: 'der' });
    const publicKey = await webcrypto.subtle.importKey('spki', spki, EC_P256, true, ['verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: [{ CN: [service] }],
        keys: { privateKey, publicKey },
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], false)],
      },
      webcrypto,
    );
    return csr.toString('pem') + '\n';
  }

  /** Writes the key to `file`, owner-only (0600) from the first instant, atomically; makes its directory (0700) if need be. */
  async save(file: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, this.keyPem, 0o600);
  }
}

/** When to renew: at 2/3 of the certificate's lifetime (notBefore→notAfter), as SPIRE does. */
export function renewAt(identity: { readonly notBefore: Date; readonly notAfter: Date }): Date {
  const from = identity.notBefore.getTime();
  return new Date(from + ((identity.notAfter.getTime() - from) * 2) / 3);
}
