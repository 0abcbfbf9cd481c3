// What the mesh CA takes from a workload: a PKCS#10 CSR, checked strictly — one canonical PEM block,
// exact DER around the signed part, an ECDSA P-256 key, and a signature OpenSSL verifies.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

/** @peculiar/x509 as ca.ts loads it (lazily). */
type X509Module = typeof X509;

/** A CSR is a few hundred bytes; anything much larger is not one. */
const MAX_CSR_PEM = 64 * 1024;
const NODE_HASHES: Readonly<Record<string, string>> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/**
 * The CSR in `pem`, parsed, with an ECDSA P-256 key and a valid signature by it; throws otherwise.
 * Strict where x509's parser is lenient, so that a CSR changed anywhere is refused, not only one
 * changed inside its signed part: canonical base64, exact DER lengths around the signed part, and the
 * signature checked by OpenSSL (which wants a DER ECDSA signature, not one with padded integers).
 */
export async function checkCsr(x509: X509Module, pem: string): Promise<X509.Pkcs10CertificateRequest> {
  const der = csrDer(pem);
  let parts: { signed: Uint8Array; signature: Uint8Array };
  let csr: X509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    parts = csrParts(der);
    csr = new x509.Pkcs10CertificateRequest(der);
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw new Error(`invalid CSR: cannot parse it (${(error as Error).message})`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`invalid CSR: the key must be ECDSA P-256, got ${describeKey(key)}`);
  }
  // WebCrypto's view of the signature algorithm: { name: <OID> } when x509 does not know it.
  const algorithm = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  const hash = NODE_HASHES[algorithm.hash?.name ?? ''];
  if (algorithm.name !== 'ECDSA' || !hash) {
    const named = algorithm.hash?.name ? `${algorithm.name} with ${algorithm.hash.name}` : algorithm.name;
    throw new Error(`invalid CSR: unsupported signature algorithm ${named} (ECDSA with SHA-256/384/512)`);
  }
  let valid: boolean;
  try {
    valid = verify(hash, parts.signed, { key, dsaEncoding: 'der' }, parts.signature);
  } catch (error) {
    throw new Error(`invalid CSR: cannot verify its signature (${(error as Error).message})`, { cause: error });
  }
  if (!valid) throw new Error('invalid CSR: its signature does not verify (tampered, or not signed by its key)');
  return csr;
}

/** The DER of the one CERTIFICATE REQUEST block in `pem`, whose base64 must be canonical. */
function csrDer(pem: string): Buffer {
  if (pem.length > MAX_CSR_PEM) throw new Error(`invalid CSR: larger than ${MAX_CSR_PEM} bytes`);
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE REQUEST-----([^-]*)-----END CERTIFICATE REQUEST-----/g)];
  const begins = pem.match(/-----BEGIN /g)?.length ?? 0;
  if (blocks.length !== 1 || begins !== 1) throw new Error('invalid CSR: expected exactly one PEM "CERTIFICATE REQUEST" block');
  const base64 = blocks[0]![1]!.replace(/\s+/g, '');
  const der = Buffer.from(base64, 'base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || der.length === 0 || der.toString('base64') !== base64) {
    throw new Error('invalid CSR: the PEM body is not canonical base64');
  }
  return der;
}

/**
 * The signed part (CertificationRequestInfo, as its exact bytes) and the signature of a PKCS#10 DER:
 * SEQUENCE { info SEQUENCE, algorithm SEQUENCE, signature BIT STRING } filling `der` exactly.
 */
function csrParts(der: Uint8Array): { signed: Uint8Array; signature: Uint8Array } {
  const outer = readTlv(der, 0, 0x30);
  if (outer.end !== der.length) throw new Error('trailing bytes after the CSR');
  const info = readTlv(der, outer.content, 0x30);
  const algorithm = readTlv(der, info.end, 0x30);
  const signature = readTlv(der, algorithm.end, 0x03);
  if (signature.end !== outer.end) throw new Error('trailing fields in the CSR');
  if (signature.end - signature.content < 2 || der[signature.content] !== 0) throw new Error('malformed signature BIT STRING');
  return { signed: der.subarray(info.start, info.end), signature: der.subarray(signature.content + 1, signature.end) };
}

/** One DER TLV at `at` with tag `tag`: definite, minimally encoded length within `der`. */
function readTlv(der: Uint8Array, at: number, tag: number): { start: number; content: number; end: number } {
  if (at + 2 > der.length || der[at] !== tag) throw new Error(`expected DER tag 0x${tag.toString(16)} at byte ${at}`);
  let length = der[at + 1]!;
  let content = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 3 || content + octets > der.length || der[content] === 0) throw new Error(`bad DER length at byte ${at}`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[content + i]!;
    if (length < 0x80) throw new Error(`non-minimal DER length at byte ${at}`);
    content += octets;
  }
  const end = content + length;
  if (end > der.length) throw new Error(`DER length past the end at byte ${at}`);
  return { start: at, content, end };
}

/** A key's type and size, as errors name it: "ec prime256v1", "rsa 2048". */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  if (details?.namedCurve) return `${key.asymmetricKeyType} ${details.namedCurve}`;
  if (details?.modulusLength) return `${key.asymmetricKeyType} ${details.modulusLength}`;
  return String(key.asymmetricKeyType);
}
